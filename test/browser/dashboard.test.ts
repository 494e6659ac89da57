// The dashboard in headless Chromium against a real local cluster: API server, agents with their
// VM kernels, and the balancer. The page must show the nodes, show a dry run's moves before they
// happen, and show a drained node emptying.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { NodeView, VmView } from '../../functions/api/schemas.ts';
import { screenshot } from './browser.ts';
import { until } from './cluster.ts';
import { clusterWithPage } from './cluster-page.ts';

const NODES = ['node-1', 'node-2', 'node-3'];
/** Work units per second each VM wants (1,000,000 = one core): all start on node-1. */
const RATES = [600_000, 500_000, 400_000, 300_000, 300_000, 200_000];

const vmsOn = (page: Page, node: string) => page.locator(`[data-node="${node}"] [data-vm]`);

describe('the dashboard on a live local cluster', () => {
  const live = clusterWithPage(
    NODES.map((id) => ({ id, capacity: 4 })),
    async (cluster) => {
      await until('every node to be live and reporting', async () => {
        const { items } = await cluster.api<{ items: NodeView[] }>('GET', '/v1/nodes');
        return items.length === NODES.length && items.every((n) => n.live && n.report) ? true : undefined;
      });
      for (const rate of RATES) {
        await cluster.api('POST', '/v1/vms', { guest: 'cpu', node: 'node-1', params: { rate } });
      }
      await until('node-1 to report all its VMs running', async () => {
        const { items } = await cluster.api<{ items: VmView[] }>('GET', '/v1/vms');
        return items.length === RATES.length &&
          items.every((vm) => vm.state === 'RUNNING' && (vm.load ?? 0) > 0)
          ? true
          : undefined;
      });
    },
  );

  it('shows every node with its VMs, and takes the token out of the address bar', async () => {
    await live.page.goto(`${live.cluster.url}/?token=${live.cluster.token}`);
    await live.page.locator('[data-node]').first().waitFor();
    expect(new URL(live.page.url()).search).toBe('');
    expect(await live.page.evaluate(() => sessionStorage.getItem('seesaw.token'))).toBe(live.cluster.token);
    await expect.poll(() => live.page.locator('[data-node]').count()).toBe(NODES.length);
    await expect.poll(() => vmsOn(live.page, 'node-1').count()).toBe(RATES.length);
    expect(await vmsOn(live.page, 'node-2').count()).toBe(0);
    expect(await live.page.locator('[data-node="node-2"] .empty').textContent()).toBe('no VMs');
    // node-1 carries all the load, so its bar is the one far above the mean.
    const meter = live.page.locator('[data-node="node-1"] [role="meter"]');
    expect(Number(await meter.getAttribute('aria-valuenow'))).toBeGreaterThan(1.5);
  });

  it('shows a dry run’s proposed moves before anything moves', async () => {
    await live.page.click('#dry-run');
    const moves = live.page.locator('#proposal [data-move]');
    await moves.first().waitFor({ timeout: 60_000 });
    const proposed = await moves.allTextContents();
    expect(proposed.length).toBeGreaterThan(0);
    for (const line of proposed) expect(line).toMatch(/node-1 → node-[23]/);
    await expect
      .poll(() => live.page.locator('[data-node="node-1"] .vm.proposed').count())
      .toBe(proposed.length);
    await screenshot(live.page, 'test-artifacts/dashboard-dry-run.png');

    // A dry run orders nothing: every VM is still on node-1 with no migration.
    const { items } = await live.cluster.api<{ items: VmView[] }>('GET', '/v1/vms');
    expect(items.every((vm) => vm.owner === 'node-1' && vm.migration === null)).toBe(true);
    const { items: runs } = await live.cluster.api<{ items: { dryRun: boolean }[] }>('GET', '/v1/runs');
    expect(runs.filter((r) => !r.dryRun)).toEqual([]);
  }, 90_000);

  it('applies exactly the reviewed moves, and the moved VMs appear on their new nodes', async () => {
    const proposed = await live.page.$$eval('#proposal [data-move]', (els) =>
      els.map((el) => el.dataset.move),
    );
    await live.page.locator('#proposal').getByRole('button', { name: 'Apply these moves' }).click();
    await expect
      .poll(
        async () => (await vmsOn(live.page, 'node-2').count()) + (await vmsOn(live.page, 'node-3').count()),
        {
          timeout: 60_000,
        },
      )
      .toBeGreaterThan(0);
    // The orders written are the plan's, one for one: their origin is the plan the live.page showed.
    const { items: plans } = await live.cluster.api<{
      items: { id: string; status: string; moves: { vm: string }[] }[];
    }>('GET', '/v1/plans');
    expect(plans[0]?.status).toBe('applied');
    expect(proposed).toEqual(plans[0]?.moves.map((m) => m.vm));
    expect(await live.page.locator('#proposal-panel').isHidden()).toBe(true);
    // Applying runs no new round: the runs list holds no real run yet.
    const { items: runs } = await live.cluster.api<{ items: unknown[] }>('GET', '/v1/runs');
    expect(runs).toEqual([]);
  }, 90_000);

  it('empties a node on screen when it is drained', async () => {
    live.cluster.startBalancer();
    await live.page.locator('[data-node="node-1"] button.drain').click();
    await expect
      .poll(() => live.page.locator('[data-node="node-1"]').getAttribute('data-draining'))
      .toBe('true');
    await expect(live.page.locator('[data-node="node-1"] .badge.draining').textContent()).resolves.toBe(
      'draining',
    );
    await expect.poll(() => vmsOn(live.page, 'node-1').count(), { timeout: 100_000, interval: 500 }).toBe(0);
    expect(await live.page.locator('[data-node="node-1"] .empty').textContent()).toBe('no VMs');
    // Every VM is still on screen, on the other nodes, and the runs say why they moved.
    await expect
      .poll(
        async () => (await vmsOn(live.page, 'node-2').count()) + (await vmsOn(live.page, 'node-3').count()),
      )
      .toBe(RATES.length);
    const runId = await live.page
      .locator('#runs details')
      .filter({ hasText: 'node-1 is draining: gave' })
      .first()
      .getAttribute('data-run');
    const drainRun = live.page.locator(`#runs details[data-run="${runId}"]`);
    await drainRun.locator('summary').click();
    await expect.poll(() => drainRun.locator('.pair.moved').first().isVisible()).toBe(true);
    expect(await drainRun.locator('.pair.moved').first().textContent()).toContain('node-1 is draining');
    await screenshot(live.page, 'test-artifacts/dashboard.png');
  }, 150_000);

  it('migrates a VM to the node chosen in the migrate dialog', async () => {
    const { items } = await live.cluster.api<{ items: VmView[] }>('GET', '/v1/vms');
    const vm = items.find((v) => v.owner === 'node-2' && v.state === 'RUNNING' && !v.migration);
    if (!vm) throw new Error('expected a running VM on node-2');
    await live.page
      .locator(`[data-node="node-2"] [data-vm="${vm.id}"]`)
      .getByRole('button', { name: 'Migrate' })
      .click();
    const options = await live.page.locator('#migrate-target option').allTextContents();
    // node-1 drains and node-2 is the owner: the only node on offer besides `auto` is node-3.
    expect(options.filter((o) => !o.startsWith('auto'))).toEqual(['node-3']);
    await live.page.selectOption('#migrate-target', 'node-3');
    await live.page.locator('#migrate-form button[type="submit"]').click();
    await expect
      .poll(() => live.page.locator(`[data-node="node-3"] [data-vm="${vm.id}"]`).count(), { timeout: 30_000 })
      .toBe(1);
  }, 60_000);

  it('suspends a VM into the suspended list and resumes it onto a node', async () => {
    const { items } = await live.cluster.api<{ items: VmView[] }>('GET', '/v1/vms');
    const vm = items.find((v) => v.owner !== 'node-1' && v.state === 'RUNNING' && !v.migration);
    if (!vm) throw new Error('expected a running VM off node-1');
    await live.page
      .locator(`[data-node] [data-vm="${vm.id}"]`)
      .getByRole('button', { name: 'Suspend' })
      .click();
    const suspended = live.page.locator(`#suspended [data-vm="${vm.id}"]`);
    await expect.poll(() => suspended.count(), { timeout: 30_000 }).toBe(1);
    expect(await live.page.locator(`[data-node] [data-vm="${vm.id}"]`).count()).toBe(0);
    await suspended.getByRole('button', { name: 'Resume' }).click();
    await expect
      .poll(() => live.page.locator(`[data-node] [data-vm="${vm.id}"]`).count(), { timeout: 30_000 })
      .toBe(1);
    expect(await suspended.count()).toBe(0);
    expect(await live.page.locator('[data-node="node-1"] [data-vm]').count()).toBe(0);
  }, 60_000);
});
