// The user's path: `seesaw up` in a temporary directory prints a dashboard URL; opened in Chromium,
// the page shows the demo cluster and, live, the balancer evening it out.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSeesawUp, stopSeesawUp } from '../support/seesaw-up.ts';
import { type Browser, launchBrowser, screenshot } from './browser.ts';

const NODES = 3;
const VMS = 6;

describe('the dashboard behind `seesaw up`', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'seesaw-up-dash-'));
  let child: ChildProcess | undefined;
  let dashboard: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ({ child, dashboard } = await startSeesawUp(
      ['--port', '0', '--nodes', String(NODES), '--vms', String(VMS), '--interval', '2'],
      dataDir,
    ));
    browser = await launchBrowser();
    page = await browser.page();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopSeesawUp(child);
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('opens from the printed URL and shows the demo nodes and VMs', async () => {
    expect(dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=.+/);
    await page.goto(dashboard);
    await expect.poll(() => page.locator('[data-node]').count(), { timeout: 30_000 }).toBe(NODES);
    await expect.poll(() => page.locator('[data-node] [data-vm]').count(), { timeout: 30_000 }).toBe(VMS);
    expect(new URL(page.url()).search).toBe('');
  });

  it('shows the balancer moving VMs as it happens', async () => {
    // The demo places most VMs on node-1; the scheduled balancer moves some within a few rounds.
    const completed = page.locator('#migrations .migration.completed');
    await expect.poll(() => completed.count(), { timeout: 90_000, interval: 1000 }).toBeGreaterThan(0);
    const moved = await page.locator('#runs summary').allTextContents();
    expect(moved.some((line) => /[1-9]\d* moves?/.test(line))).toBe(true);
    // Every VM is still on screen, wherever it now runs.
    await expect.poll(() => page.locator('[data-node] [data-vm]').count()).toBe(VMS);
    await screenshot(page, 'test-artifacts/dashboard-seesaw-up.png');
  }, 120_000);
});
