// The dashboard's own behaviour in headless Chromium over a real API and table, with nodes and VMs
// written straight to storage (no agents): the token flow, dead and draining marks, and escaping.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { afterFailure } from '../../shared/domain/restart.ts';
import { patchNode } from '../../shared/storage/nodes.ts';
import { createVm, failVm, markRunning } from '../../shared/storage/vms.ts';
import { seededDashboardForSuite } from '../support/dashboard.ts';

const TOKEN = 'page-test-token';
const HOSTILE_NODE = '<img src=x onerror="document.title=1">';
const HOSTILE_VM = 'vm-<b>bold</b>&amp;';

describe('the dashboard page', () => {
  const dash = seededDashboardForSuite(
    TOKEN,
    [
      {
        id: 'node-a',
        vms: [
          { id: 'vm-1', cpu: 3 },
          { id: HOSTILE_VM, cpu: 1 },
        ],
      },
      { id: 'node-b', vms: [{ id: 'vm-2', cpu: 1 }] },
      { id: 'node-dead', lapsed: true },
      { id: HOSTILE_NODE },
    ],
    async (clients, now) => {
      await patchNode(clients, 'node-b', { draining: true }, now);
      await createVm(clients, { id: 'vm-bad', owner: 'node-a', guest: { kind: 'cpu' }, memPages: 1 }, now);
      await markRunning(clients, { id: 'vm-bad', node: 'node-a', fence: 1, now });
      await failVm(clients, {
        id: 'vm-bad',
        node: 'node-a',
        fence: 1,
        reason: 'trap in digest: unreachable',
        next: afterFailure(undefined, 0, now),
        now,
      });
    },
  );

  const open = async (path: string): Promise<Page> => {
    const page = await dash.browser.page();
    await page.goto(`${dash.api.url}${path}`);
    return page;
  };

  it('asks for the token when the address has none, refuses a wrong one, and keeps a right one', async () => {
    const page = await open('/');
    const dialog = page.locator('#token-dialog');
    await expect.poll(() => dialog.isVisible()).toBe(true);
    expect(await page.locator('[data-node]').count()).toBe(0);

    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-form button[type="submit"]');
    await expect.poll(() => page.locator('#token-error').textContent()).toContain('did not accept');
    expect(await dialog.isVisible()).toBe(true);

    await page.fill('#token-input', TOKEN);
    await page.click('#token-form button[type="submit"]');
    await expect.poll(() => page.locator('[data-node]').count()).toBe(4);
    expect(await dialog.isVisible()).toBe(false);

    await page.reload();
    await expect.poll(() => page.locator('[data-node]').count()).toBe(4);
    expect(await dialog.isVisible()).toBe(false);

    await page.click('#sign-out');
    expect(await page.evaluate(() => sessionStorage.getItem('seesaw.token'))).toBeNull();
    await expect.poll(() => dialog.isVisible()).toBe(true);
  });

  it('marks dead and draining nodes', async () => {
    const page = await open(`/?token=${TOKEN}`);
    const dead = page.locator('[data-node="node-dead"]');
    await expect.poll(() => dead.getAttribute('data-dead')).toBe('true');
    expect(await dead.locator('.badge.dead').textContent()).toBe('dead');
    const draining = page.locator('[data-node="node-b"]');
    expect(await draining.getAttribute('data-draining')).toBe('true');
    expect(await draining.locator('.badge.draining').textContent()).toBe('draining');
    expect(await draining.locator('button.drain').textContent()).toBe('Undrain');
    expect(await page.locator('[data-node="node-a"]').getAttribute('data-dead')).toBe('false');
  });

  it('shows names from the API as text, never as markup', async () => {
    const page = await open(`/?token=${TOKEN}`);
    await expect.poll(() => page.locator('[data-node]').count()).toBe(4);
    const titles = await page.locator('[data-node] h3').allTextContents();
    expect(titles).toContain(HOSTILE_NODE);
    expect(await page.locator('[data-node="node-a"] .vm-id').allTextContents()).toContain(HOSTILE_VM);
    expect(await page.locator('#nodes img, #nodes b').count()).toBe(0);
    expect(await page.title()).toBe('Seesaw');
  });

  it('shows a failed VM with the reason it failed', async () => {
    const page = await open(`/?token=${TOKEN}`);
    const bad = page.locator('[data-vm="vm-bad"]');
    await expect.poll(() => bad.count()).toBe(1);
    expect(await bad.locator('.badge.state').textContent()).toBe('failed');
    expect(await bad.locator('.badge.failed').textContent()).toBe('trap in digest: unreachable');
  });

  it('colours the node above the mean apart from the one below it, in the legend’s bands', async () => {
    const page = await open(`/?token=${TOKEN}`);
    await expect.poll(() => page.locator('[data-node]').count()).toBe(4);
    const bands = Object.fromEntries(
      await page.$$eval('[data-node]', (els) =>
        els.map((el) => [el.getAttribute('data-node'), el.dataset.band]),
      ),
    );
    // node-a carries load 4 while the other live, undrained node carries none; node-b drains.
    expect(bands).toEqual({
      'node-a': 'over',
      [HOSTILE_NODE]: 'under',
      'node-b': 'draining',
      'node-dead': 'dead',
    });
  });
});
