// The user's path: `seesaw up` in a temporary directory prints a dashboard URL; opened in Chromium,
// the page shows the demo cluster and, live, the balancer evening it out.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, launchBrowser, screenshot } from './browser.ts';

const NODES = 3;
const VMS = 6;

/** Starts `seesaw up` and resolves with the dashboard URL it prints. */
function seesawUp(dataDir: string): Promise<{ child: ChildProcess; dashboard: string }> {
  const child = spawn(
    process.execPath,
    [
      'bin/seesaw.js',
      'up',
      '--port',
      '0',
      '--data',
      dataDir,
      '--nodes',
      String(NODES),
      '--vms',
      String(VMS),
      '--interval',
      '2',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SEESAW_TOKEN: '' } },
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`seesaw up printed no dashboard URL:\n${output}`)),
      90_000,
    );
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /^dashboard\s+(\S+)/m.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({ child, dashboard: match[1] });
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`seesaw up exited (${code}) before printing a dashboard URL:\n${output}`));
    });
  });
}

describe('the dashboard behind `seesaw up`', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'seesaw-up-dash-'));
  let child: ChildProcess | undefined;
  let dashboard: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ({ child, dashboard } = await seesawUp(dataDir));
    browser = await launchBrowser();
    page = await browser.page();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
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
