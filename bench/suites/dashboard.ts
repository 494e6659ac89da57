// Dashboard figures in headless Chromium over a real API and table: time from navigation to the
// cluster on screen (target < 1 s locally), the poll period (target ≤ 2 s), what one poll's API calls
// take, and the size of the page's files.
import { gzipSync } from 'node:zlib';
import { ASSETS } from '../../functions/api/dashboard/assets.ts';
import { startApiServer } from '../../functions/api/server.ts';
import { startScratchStores } from '../../shared/local/stores.ts';
import { type Browser, launchBrowser } from '../../test/browser/browser.ts';
import { type NodeFixture, seedCluster } from '../../test/support/balancer-cluster.ts';

export const name = 'dashboard';

const TOKEN = 'bench-token';

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
const round1 = (n: number) => Math.round(n * 10) / 10;

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const nodes = ctx.quick ? 8 : 32;
  const vmsPerNode = ctx.quick ? 5 : 10;
  const loads = ctx.quick ? 5 : 15;
  // Each part is closed whatever happens after it started: a browser that fails to launch (no
  // Chromium) must not leave the API server and the stores holding the process open.
  const { clients, close } = await startScratchStores('seesaw-bench-dashboard');
  try {
    const fixtures: NodeFixture[] = Array.from({ length: nodes }, (_, n) => ({
      id: `node-${n + 1}`,
      capacity: 20,
      vms: Array.from({ length: vmsPerNode }, (_, v) => ({
        id: `vm-${n + 1}-${v + 1}`,
        cpu: 0.2 + ((n * 7 + v) % 10) / 10,
      })),
    }));
    await seedCluster(clients, Date.now(), fixtures);
    const api = await startApiServer({ clients, token: TOKEN, port: 0 });
    try {
      const browser = await launchBrowser();
      try {
        return await measure(ctx, api.url, browser, { nodes, vmsPerNode, loads });
      } finally {
        await browser.close();
      }
    } finally {
      await api.close();
    }
  } finally {
    await close();
  }
}

/** The figures, from `loads` page loads and polls and one page left open for the poll period. */
async function measure(
  ctx: { quick: boolean; log: (line: string) => void },
  url: string,
  browser: Browser,
  { nodes, vmsPerNode, loads }: { nodes: number; vmsPerNode: number; loads: number },
) {
  const firstRender: number[] = [];
  const domReady: number[] = [];
  for (let i = 0; i < loads; i++) {
    const page = await browser.page();
    await page.goto(`${url}/?token=${TOKEN}`);
    await page.waitForFunction(() => performance.getEntriesByName('seesaw:first-render').length > 0);
    const timing = await page.evaluate(() => ({
      render: performance.getEntriesByName('seesaw:first-render')[0]?.startTime ?? Number.NaN,
      dom: (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming)
        .domContentLoadedEventEnd,
    }));
    firstRender.push(timing.render);
    domReady.push(timing.dom);
    await page.close();
  }

  // What one poll costs: the four list calls the page makes, timed from here.
  const calls = ['/v1/nodes', '/v1/vms?limit=500', '/v1/runs?limit=10', '/v1/migrations?limit=10'];
  const pollMs: number[] = [];
  for (let i = 0; i < loads; i++) {
    const started = performance.now();
    await Promise.all(
      calls.map(async (path) => {
        const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        await res.arrayBuffer();
      }),
    );
    pollMs.push(performance.now() - started);
  }
  pollMs.sort((a, b) => a - b);

  // The poll period: how often the page asks for the nodes while it sits open.
  const page = await browser.page();
  const asked: number[] = [];
  page.on('request', (req) => {
    if (new URL(req.url()).pathname === '/v1/nodes') asked.push(Date.now());
  });
  await page.goto(`${url}/?token=${TOKEN}`);
  await new Promise((r) => setTimeout(r, ctx.quick ? 6_000 : 15_000));
  await page.close();
  const gaps = asked
    .slice(1)
    .map((t, i) => t - (asked[i] as number))
    .sort((a, b) => a - b);

  firstRender.sort((a, b) => a - b);
  domReady.sort((a, b) => a - b);
  const figures = {
    nodes,
    vms: nodes * vmsPerNode,
    loads,
    firstRenderMsP50: round1(percentile(firstRender, 50)),
    firstRenderMsMax: round1(firstRender[firstRender.length - 1] ?? Number.NaN),
    domContentLoadedMsP50: round1(percentile(domReady, 50)),
    pollPeriodMsP50: percentile(gaps, 50),
    pollPeriodMsMax: gaps[gaps.length - 1] ?? Number.NaN,
    pollRequestsMsP50: round1(percentile(pollMs, 50)),
    assetsKiB: round1(Object.values(ASSETS).reduce((n, a) => n + Buffer.byteLength(a.body), 0) / 1024),
    assetsGzipKiB: round1(Object.values(ASSETS).reduce((n, a) => n + gzipSync(a.body).length, 0) / 1024),
  };
  ctx.log(
    `${nodes} nodes, ${nodes * vmsPerNode} VMs: cluster on screen p50 ${figures.firstRenderMsP50} ms ` +
      `(max ${figures.firstRenderMsMax} ms, target < 1000), polls every ${figures.pollPeriodMsP50} ms ` +
      `(max ${figures.pollPeriodMsMax} ms, target ≤ 2000), one poll's API calls p50 ${figures.pollRequestsMsP50} ms, ` +
      `page ${figures.assetsKiB} KiB (${figures.assetsGzipKiB} KiB gzipped)`,
  );
  return figures;
}
