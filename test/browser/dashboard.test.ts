// The dashboard in headless Chromium against a real local cluster: API server, agents with their
// VM kernels, and the balancer. The page must show the nodes, show a dry run's moves before they
// happen, and show a drained node emptying.
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
interface NodeItem {
  id: string;
  live: boolean;
  load: number;
  report: { vmCount: number } | null;
}

const NODES = ['node-1', 'node-2', 'node-3'];
/** Work units per second each VM wants (1,000,000 = one core): all start on node-1. */
const RATES = [600_000, 500_000, 400_000, 300_000, 300_000, 200_000];

const vmsOn = (page: Page, node: string) => page.locator(`[data-node="${node}"] [data-vm]`);

describe('the dashboard on a live local cluster', () => {
  let cluster: LocalCluster;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    const clients = await freshStores();
    cluster = await startLocalCluster(
      clients,
      NODES.map((id) => ({ id, capacity: 4 })),
    );
    await until('every node to be live and reporting', async () => {
      const { items } = await cluster.api<{ items: NodeItem[] }>('GET', '/v1/nodes');
      return items.length === NODES.length && items.every((n) => n.live && n.report) ? true : undefined;
    });
    for (const rate of RATES) {
      await cluster.api('POST', '/v1/vms', { guest: 'cpu', node: 'node-1', params: { rate } });
    }
    await until('node-1 to report all its VMs running', async () => {
      const { items } = await cluster.api<{ items: VmItem[] }>('GET', '/v1/vms');
      return items.length === RATES.length &&
        items.every((vm) => vm.state === 'RUNNING' && (vm.load ?? 0) > 0)
        ? true
        : undefined;
    });
    browser = await launchBrowser();
    page = await browser.page();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  }, 60_000);

  it('shows every node with its VMs, and takes the token out of the address bar', async () => {
    await page.goto(`${cluster.url}/?token=${cluster.token}`);
    await page.locator('[data-node]').first().waitFor();
    expect(new URL(page.url()).search).toBe('');
    expect(await page.evaluate(() => sessionStorage.getItem('seesaw.token'))).toBe(cluster.token);
    await expect.poll(() => page.locator('[data-node]').count()).toBe(NODES.length);
    await expect.poll(() => vmsOn(page, 'node-1').count()).toBe(RATES.length);
    expect(await vmsOn(page, 'node-2').count()).toBe(0);
    expect(await page.locator('[data-node="node-2"] .empty').textContent()).toBe('no VMs');
    // node-1 carries all the load, so its bar is the one far above the mean.
    const meter = page.locator('[data-node="node-1"] [role="meter"]');
    expect(Number(await meter.getAttribute('aria-valuenow'))).toBeGreaterThan(1.5);
  });

  it('shows a dry run’s proposed moves before anything moves', async () => {
    await page.click('#dry-run');
    const moves = page.locator('#proposal [data-move]');
    await moves.first().waitFor({ timeout: 60_000 });
    const proposed = await moves.allTextContents();
    expect(proposed.length).toBeGreaterThan(0);
    for (const line of proposed) expect(line).toMatch(/node-1 → node-[23]/);
    await expect.poll(() => page.locator('[data-node="node-1"] .vm.proposed').count()).toBe(proposed.length);
    await screenshot(page, 'test-artifacts/dashboard-dry-run.png');

    // A dry run orders nothing: every VM is still on node-1 with no migration.
    const { items } = await cluster.api<{ items: VmItem[] }>('GET', '/v1/vms');
    expect(items.every((vm) => vm.owner === 'node-1' && vm.migration === null)).toBe(true);
    const { items: runs } = await cluster.api<{ items: { dryRun: boolean }[] }>('GET', '/v1/runs');
    expect(runs.filter((r) => !r.dryRun)).toEqual([]);
  }, 90_000);

  it('applies exactly the reviewed moves, and the moved VMs appear on their new nodes', async () => {
    const proposed = await page.$$eval('#proposal [data-move]', (els) => els.map((el) => el.dataset.move));
    await page.locator('#proposal').getByRole('button', { name: 'Apply these moves' }).click();
    await expect
      .poll(async () => (await vmsOn(page, 'node-2').count()) + (await vmsOn(page, 'node-3').count()), {
        timeout: 60_000,
      })
      .toBeGreaterThan(0);
    // The orders written are the plan's, one for one: their origin is the plan the page showed.
    const { items: plans } = await cluster.api<{
      items: { id: string; status: string; moves: { vm: string }[] }[];
    }>('GET', '/v1/plans');
    expect(plans[0]?.status).toBe('applied');
    expect(proposed).toEqual(plans[0]?.moves.map((m) => m.vm));
    expect(await page.locator('#proposal-panel').isHidden()).toBe(true);
    // Applying runs no new round: the runs list holds no real run yet.
    const { items: runs } = await cluster.api<{ items: unknown[] }>('GET', '/v1/runs');
    expect(runs).toEqual([]);
  }, 90_000);

  it('empties a node on screen when it is drained', async () => {
    cluster.startBalancer();
    await page.locator('[data-node="node-1"] button.drain').click();
    await expect.poll(() => page.locator('[data-node="node-1"]').getAttribute('data-draining')).toBe('true');
    await expect(page.locator('[data-node="node-1"] .badge.draining').textContent()).resolves.toBe(
      'draining',
    );
    await expect.poll(() => vmsOn(page, 'node-1').count(), { timeout: 100_000, interval: 500 }).toBe(0);
    expect(await page.locator('[data-node="node-1"] .empty').textContent()).toBe('no VMs');
    // Every VM is still on screen, on the other nodes, and the runs say why they moved.
    await expect
      .poll(async () => (await vmsOn(page, 'node-2').count()) + (await vmsOn(page, 'node-3').count()))
      .toBe(RATES.length);
    const runId = await page
      .locator('#runs details')
      .filter({ hasText: 'node-1 is draining: gave' })
      .first()
      .getAttribute('data-run');
    const drainRun = page.locator(`#runs details[data-run="${runId}"]`);
    await drainRun.locator('summary').click();
    await expect.poll(() => drainRun.locator('.pair.moved').first().isVisible()).toBe(true);
    expect(await drainRun.locator('.pair.moved').first().textContent()).toContain('node-1 is draining');
    await screenshot(page, 'test-artifacts/dashboard.png');
  }, 150_000);

  it('migrates a VM to the node chosen in the migrate dialog', async () => {
    const { items } = await cluster.api<{ items: VmItem[] }>('GET', '/v1/vms');
    const vm = items.find((v) => v.owner === 'node-2' && v.state === 'RUNNING' && !v.migration);
    if (!vm) throw new Error('expected a running VM on node-2');
    await page
      .locator(`[data-node="node-2"] [data-vm="${vm.id}"]`)
      .getByRole('button', { name: 'Migrate' })
      .click();
    const options = await page.locator('#migrate-target option').allTextContents();
    // node-1 drains and node-2 is the owner: the only node on offer besides `auto` is node-3.
    expect(options.filter((o) => !o.startsWith('auto'))).toEqual(['node-3']);
    await page.selectOption('#migrate-target', 'node-3');
    await page.locator('#migrate-form button[type="submit"]').click();
    await expect
      .poll(() => page.locator(`[data-node="node-3"] [data-vm="${vm.id}"]`).count(), { timeout: 30_000 })
      .toBe(1);
  }, 60_000);

  it('suspends a VM into the suspended list and resumes it onto a node', async () => {
    const { items } = await cluster.api<{ items: VmItem[] }>('GET', '/v1/vms');
    const vm = items.find((v) => v.owner !== 'node-1' && v.state === 'RUNNING' && !v.migration);
    if (!vm) throw new Error('expected a running VM off node-1');
    await page.locator(`[data-node] [data-vm="${vm.id}"]`).getByRole('button', { name: 'Suspend' }).click();
    const suspended = page.locator(`#suspended [data-vm="${vm.id}"]`);
    await expect.poll(() => suspended.count(), { timeout: 30_000 }).toBe(1);
    expect(await page.locator(`[data-node] [data-vm="${vm.id}"]`).count()).toBe(0);
    await suspended.getByRole('button', { name: 'Resume' }).click();
    await expect
      .poll(() => page.locator(`[data-node] [data-vm="${vm.id}"]`).count(), { timeout: 30_000 })
      .toBe(1);
    expect(await suspended.count()).toBe(0);
    expect(await page.locator('[data-node="node-1"] [data-vm]').count()).toBe(0);
  }, 60_000);
});
