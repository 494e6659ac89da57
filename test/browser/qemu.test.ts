// A real x86 VM on the dashboard, in headless Chromium: a local cluster whose agents offer the qemu
// driver runs the counter guest under TCG; the page shows it under its node like any other VM,
// marked with its driver, with its measured load, and shows it on the other node after a migration.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { VmView } from '../../functions/api/schemas.ts';
import { screenshot } from './browser.ts';
import { until } from './cluster.ts';
import { clusterWithPage } from './cluster-page.ts';

const NODES = ['q-node-1', 'q-node-2'];
const vmRow = (page: Page, node: string, vm: string) =>
  page.locator(`[data-node="${node}"] [data-vm="${vm}"]`);

describe('the dashboard with a real x86 VM', () => {
  let id: string;
  const live = clusterWithPage(
    NODES.map((id) => ({ id, capacity: 4, qemu: true })),
    async (cluster) => {
      // Through the API, as a user would: it places the VM on a node that offers qemu.
      const created = await cluster.api<VmView>('POST', '/v1/vms', {
        guest: 'qemu:counter',
        memPages: 256,
        node: 'q-node-1',
      });
      id = created.id;
      await until(
        'the x86 VM to run with a load',
        async () => {
          const item = await vm();
          return item.state === 'RUNNING' && item.load !== null ? true : undefined;
        },
        60_000,
      );
    },
  );
  const vm = () => live.cluster.api<VmView>('GET', `/v1/vms/${id}`);

  it('shows the x86 VM under its node, marked with its driver, with its load', async () => {
    await live.page.goto(`${live.cluster.url}/?token=${live.cluster.token}`);
    const row = vmRow(live.page, 'q-node-1', id);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.badge.driver').textContent()).toBe('qemu:counter');
    // running: no state badge, and a measured load like a WebAssembly VM's
    expect(await row.locator('.badge.state').count()).toBe(0);
    expect(await row.locator('.vm-load').textContent()).toMatch(/\d/);
    await screenshot(live.page, 'test-artifacts/dashboard-qemu.png');
  });

  it('shows it on the other node once it migrated there', async () => {
    await live.cluster.api('POST', `/v1/vms/${id}/migrate`, { to: 'q-node-2' });
    await expect
      .poll(async () => (await vm()).owner === 'q-node-2' && !(await vm()).migration, {
        timeout: 60_000,
        interval: 200,
      })
      .toBe(true);
    const row = vmRow(live.page, 'q-node-2', id);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.badge.driver').textContent()).toBe('qemu:counter');
    expect(await vmRow(live.page, 'q-node-1', id).count()).toBe(0);
  }, 90_000);
});
