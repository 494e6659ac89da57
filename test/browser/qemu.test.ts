// A real x86 VM on the dashboard, in headless Chromium: a local cluster whose agents offer the qemu
// driver runs the counter guest under TCG; the page shows it under its node like any other VM,
// marked with its driver, with its measured load, and shows it on the other node after a migration.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVm } from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';
import { type Browser, launchBrowser, screenshot } from './browser.ts';
import { type LocalCluster, startLocalCluster } from './cluster.ts';

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

  const vm = () => cluster.api<VmItem>('GET', '/v1/vms/x86-counter');

  beforeAll(async () => {
    const clients = await freshStores();
    cluster = await startLocalCluster(
      clients,
      NODES.map((id) => ({ id, capacity: 4, qemu: true })),
    );
    // the API takes qemu guests only with image registration; `seesaw up --qemu` writes it the same way
    await createVm(
      clients,
      { id: 'x86-counter', owner: 'q-node-1', guest: { kind: 'qemu:counter' }, memPages: 256 },
      Date.now(),
    );
    for (let tries = 0; ; tries += 1) {
      const item = await vm();
      if (item.state === 'RUNNING' && item.load !== null) break;
      if (tries > 300) throw new Error(`x86-counter is ${item.state}, not RUNNING with a load`);
      await new Promise((r) => setTimeout(r, 200));
    }
    browser = await launchBrowser();
    page = await browser.page();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  }, 60_000);

  it('shows the x86 VM under its node, marked with its driver, with its load', async () => {
    await page.goto(`${cluster.url}/?token=${cluster.token}`);
    const row = vmRow(page, 'q-node-1', 'x86-counter');
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.badge.driver').textContent()).toBe('qemu:counter');
    // running: no state badge, and a measured load like a WebAssembly VM's
    expect(await row.locator('.badge.state').count()).toBe(0);
    expect(await row.locator('.vm-load').textContent()).toMatch(/\d/);
    await screenshot(page, 'test-artifacts/dashboard-qemu.png');
  });

  it('shows it on the other node once it migrated there', async () => {
    await cluster.api('POST', '/v1/vms/x86-counter/migrate', { to: 'q-node-2' });
    await expect
      .poll(async () => (await vm()).owner === 'q-node-2' && !(await vm()).migration, {
        timeout: 60_000,
        interval: 200,
      })
      .toBe(true);
    const row = vmRow(page, 'q-node-2', 'x86-counter');
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.badge.driver').textContent()).toBe('qemu:counter');
    expect(await vmRow(page, 'q-node-1', 'x86-counter').count()).toBe(0);
  }, 90_000);
});
