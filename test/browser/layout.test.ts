// The dashboard reads right at desk and phone widths: discrete colour bands that match the legend,
// draining and dead nodes marked as such, capacity to one decimal, the dominant reason of each run,
// and no element wider than the viewport. Screenshots go to test-artifacts/.
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { patchNode } from '../../shared/storage/nodes.ts';
import { seededDashboardForSuite } from '../support/dashboard.ts';
import { screenshot } from './browser.ts';

const TOKEN = 'layout-test-token';
const LONG_VM = 'vm-with-a-rather-long-identifier-0123456789';

/** Elements whose right edge passes the viewport's, with a short description of each. */
function overflowing(page: Page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const out: string[] = [];
    for (const el of Array.from(document.querySelectorAll('body *'))) {
      const rect = el.getBoundingClientRect();
      if (rect.width === 0 && rect.height === 0) continue;
      if (rect.right > width + 0.5 || rect.left < -0.5)
        out.push(
          `${el.tagName.toLowerCase()}.${el.className} [${Math.round(rect.left)}, ${Math.round(rect.right)}]`,
        );
    }
    return { width, scrollWidth: document.documentElement.scrollWidth, out };
  });
}

describe('dashboard layout and colours', () => {
  // Mean of the nodes that take load: (2.4 + 2.0 + 1.5) / 3 ≈ 1.97.
  const dash = seededDashboardForSuite(
    TOKEN,
    [
      {
        id: 'node-1',
        capacity: 4,
        vms: [
          { id: 'vm-1', cpu: 1.4 },
          { id: LONG_VM, cpu: 1 },
        ],
      },
      { id: 'node-2', capacity: 1.8, vms: [{ id: 'vm-2', cpu: 2 }] },
      { id: 'node-3', capacity: 4, vms: [{ id: 'vm-3', cpu: 1.5 }] },
      { id: 'node-4', capacity: 4 },
      { id: 'node-5', capacity: 4, lapsed: true },
    ],
    (clients, now) => patchNode(clients, 'node-4', { draining: true }, now),
  );

  beforeAll(async () => {
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${dash.api.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body ?? {}),
      });
    await call('PATCH', '/v1/vms/vm-3', { targetLoad: 0.5, cpuLimit: 0.5 });
    for (let i = 0; i < 2; i++) await call('POST', '/v1/balance', { dryRun: false });
  }, 60_000);

  const open = async (width: number, height: number): Promise<Page> => {
    const page = await dash.browser.page();
    await page.setViewportSize({ width, height });
    await page.goto(`${dash.api.url}/?token=${TOKEN}`);
    await expect.poll(() => page.locator('[data-node]').count()).toBe(5);
    await page.locator('#runs details').first().waitFor();
    return page;
  };

  it('colours nodes in the legend’s discrete bands, and marks draining and dead nodes as such', async () => {
    const page = await open(1400, 900);
    const bands = Object.fromEntries(
      await page.$$eval('[data-node]', (els) => els.map((el) => [el.dataset.node, el.dataset.band])),
    );
    // node-1 2.4 (+22 %), node-2 2.0 (+2 %), node-3 1.5 (−24 %) against a mean of 1.97.
    expect(bands).toEqual({
      'node-1': 'over',
      'node-2': 'even',
      'node-3': 'under',
      'node-4': 'draining',
      'node-5': 'dead',
    });
    // Each node's colour is exactly its legend swatch's.
    const colours = await page.evaluate(() => {
      const swatch = (band: string) =>
        getComputedStyle(document.querySelector(`.legend .swatch.${band}`) as Element).backgroundColor;
      return Array.from(document.querySelectorAll<HTMLElement>('[data-node]')).map((el) => ({
        band: el.dataset.band as string,
        node: getComputedStyle(el).borderLeftColor,
        swatch: swatch(el.dataset.band as string),
      }));
    });
    for (const c of colours.filter((x) => x.band !== 'draining')) expect(c.node, c.band).toBe(c.swatch);
    const drainingSwatch = await page.$eval(
      '.legend .swatch.draining',
      (el) => getComputedStyle(el).backgroundImage,
    );
    const drainingNode = await page.$eval(
      '[data-node="node-4"]',
      (el) => getComputedStyle(el).borderLeftColor,
    );
    expect(drainingSwatch).toContain(drainingNode);
    expect(await page.locator('[data-node="node-4"] .bar .mean').count()).toBe(0);
  });

  it('shows capacity to one decimal, target load and CPU limit apart, and each run’s dominant reason', async () => {
    const page = await open(1400, 900);
    expect(await page.locator('[data-node="node-2"] .node-load').textContent()).toContain('/ 1.8');
    expect(await page.locator('[data-vm="vm-3"] .vm-target').textContent()).toBe(' target 0.5');
    expect(await page.locator('[data-vm="vm-3"] .vm-limit').textContent()).toBe(' limit 0.5');
    const reasons = await page.locator('#runs summary .badge.reason').allTextContents();
    expect(reasons.length).toBeGreaterThan(0);
    for (const r of reasons) expect(r).toMatch(/^[a-z-]+ × \d+$/);
  });

  for (const [width, height] of [
    [1400, 900],
    [390, 844],
    [360, 740],
  ] as const) {
    it(`fits ${width} px without sideways scrolling, with imbalance, last run and the chart in view`, async () => {
      const page = await open(width, height);
      await screenshot(page, `test-artifacts/dashboard-${width}.png`);
      const fit = await overflowing(page);
      expect(fit.out).toEqual([]);
      expect(fit.scrollWidth).toBeLessThanOrEqual(fit.width);
      // Read in one go: a poll may redraw the summary between two separate reads.
      const figures = await page.$$eval('#summary dt', (dts) =>
        dts.map((dt) => {
          const dd = dt.nextElementSibling as HTMLElement;
          const rect = dd.getBoundingClientRect();
          const shown = getComputedStyle(dd).display !== 'none' && rect.width > 0;
          return { label: dt.textContent, shown, bottom: rect.bottom };
        }),
      );
      for (const label of ['imbalance', 'last run']) {
        const figure = figures.find((f) => f.label === label);
        expect(figure?.shown, label).toBe(true);
        expect(figure?.bottom, label).toBeLessThanOrEqual(height);
      }
      const chart = await page.locator('#chart svg').boundingBox();
      expect(chart).not.toBeNull();
      // On a phone the chart comes before the nodes, on the first screen.
      if (width < 980) expect((chart?.y ?? Infinity) + 40).toBeLessThan(height);
      const buttons = await page.$$eval('.controls button', (els) =>
        els.map((el) => el.getBoundingClientRect().height),
      );
      for (const h of buttons) expect(h).toBeLessThan(40); // no "Dry / run" on two lines
    });
  }
});
