// Takes the README's picture of the dashboard on a real local cluster mid-balance:
//   npx tsx test/browser/screenshot.ts docs/dashboard.png
// Four unequal nodes, ten VMs placed unevenly, two balancing rounds run from the page, then a dry run
// of the next round with its proposed moves on screen.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTableAndBucket, localClients, startLocalStores } from '../../shared/local/stores.ts';
import { launchBrowser, screenshot } from './browser.ts';
import { startLocalCluster } from './cluster.ts';

const out = process.argv[2] ?? 'test-artifacts/dashboard-readme.png';
const scratch = mkdtempSync(join(tmpdir(), 'seesaw-shot-'));
const stores = await startLocalStores({ scratchDir: scratch, dynamoPort: 0, s3Port: 0 });
const clients = localClients(stores, { tableName: 'seesaw-screenshot', bucketName: 'seesaw-screenshot' });
await ensureTableAndBucket(clients);
const cluster = await startLocalCluster(clients, [
  { id: 'node-1', capacity: 4 },
  { id: 'node-2', capacity: 4 },
  { id: 'node-3', capacity: 6, weights: { cpu: 0.7, io: 0.2, mem: 0.05 } },
  { id: 'node-4', capacity: 3, weights: { cpu: 1.4, io: 0.3, mem: 0.08 } },
]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
await sleep(1500);
const placement: [string, number][] = [
  ['node-1', 900_000],
  ['node-1', 700_000],
  ['node-1', 500_000],
  ['node-1', 400_000],
  ['node-1', 300_000],
  ['node-2', 600_000],
  ['node-2', 200_000],
  ['node-3', 300_000],
  ['node-4', 250_000],
  ['node-1', 150_000],
];
for (const [node, rate] of placement)
  await cluster.api('POST', '/v1/vms', { guest: 'cpu', node, params: { rate } });
await sleep(3000);

const browser = await launchBrowser();
const page = await browser.page();
await page.goto(`${cluster.url}/?token=${cluster.token}`);
await page.locator('[data-node] [data-vm]').first().waitFor();
await sleep(6000);
// Two rounds, each once the last one's claims on its nodes (10 s) have lapsed, then the dry run.
for (let round = 0; round < 2; round++) {
  await page.click('#balance-now');
  await sleep(11_000);
}
await page.click('#dry-run');
await page
  .locator('#proposal [data-move]')
  .first()
  .waitFor({ timeout: 10_000 })
  .catch(() => undefined);
await sleep(4500); // let the toasts fade
await screenshot(page, out);
console.log(`wrote ${out}`);
await browser.close();
await cluster.stop();
await stores.close();
rmSync(scratch, { recursive: true, force: true });
