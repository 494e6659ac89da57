// A real x86 VM on the dashboard, in headless Chromium: a local cluster whose agents offer the qemu
// driver runs the counter guest under TCG; the page shows it under its node like any other VM,
// marked with its driver, with its measured load, and shows it on the other node after a migration.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshStores } from '../support/stores.ts';
import { type Browser, launchBrowser, screenshot } from './browser.ts';
import { type LocalCluster, startLocalCluster, until } from './cluster.ts';

interface VmItem {
  id: string;
  owner: string;
  state: string;
  load: number | null;
  migration: unknown;
}

const NODES = ['q-node-1', 'q-node-2'];
const vmRow = (page: Page, node: string, vm: string) =>
  page.locator(`[data-node="${node}"] [data-vm="${vm}"]`);

describe('the dashboard with a real x86 VM', () => {
  let cluster: LocalCluster;
  let browser: Browser;
  let page: Page;

  let id: string;
  const vm = () => cluster.api<VmItem>('GET', `/v1/vms/${id}`);

  beforeAll(async () => {
    const clients = await freshStores();
    cluster = await startLocalCluster(
      clients,
      NODES.map((id) => ({ id, capacity: 4, qemu: true })),
    );
    // Through the API, as a user would: it places the VM on a node that offers qemu.
    const created = await cluster.api<VmItem>('POST', '/v1/vms', {
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
    browser = await launchBrowser();
    page = await browser.page();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  }, 60_000);

  it('shows the x86 VM under its node, marked with its driver, with its load', async () => {
    await page.goto(`${cluster.url}/?token=${cluster.token}`);
    const row = vmRow(page, 'q-node-1', id);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.badge.driver').textContent()).toBe('qemu:counter');
    // running: no state badge, and a measured load like a WebAssembly VM's
    expect(await row.locator('.badge.state').count()).toBe(0);
    expect(await row.locator('.vm-load').textContent()).toMatch(/\d/);
    await screenshot(page, 'test-artifacts/dashboard-qemu.png');
  });

  it('shows it on the other node once it migrated there', async () => {
    await cluster.api('POST', `/v1/vms/${id}/migrate`, { to: 'q-node-2' });
    await expect
      .poll(async () => (await vm()).owner === 'q-node-2' && !(await vm()).migration, {
        timeout: 60_000,
        interval: 200,
      })
      .toBe(true);
    const row = vmRow(page, 'q-node-2', id);
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.badge.driver').textContent()).toBe('qemu:counter');
    expect(await vmRow(page, 'q-node-1', id).count()).toBe(0);
  }, 90_000);
});
