// `npm run soak`: a long fault run outside vitest, on its own dynalite and s3rver.
// Usage: npm run soak -- [--schedules 5000] [--lanes 4] [--from 100000] [--seeds 1,2,3] [--kinds hostile,swap]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureTableAndBucket, LOCAL_CREDENTIALS, startLocalStores } from '../../shared/local/stores.ts';
import { createClients } from '../../shared/storage/clients.ts';
import {
  batchSummary,
  createLane,
  failureReport,
  parseKinds,
  runSchedules,
  type ScheduleResult,
  scenarioTable,
} from './harness.ts';

const { values } = parseArgs({
  options: {
    schedules: { type: 'string', default: '5000' },
    lanes: { type: 'string', default: '4' },
    from: { type: 'string', default: '100000' },
    seeds: { type: 'string' },
    kinds: { type: 'string' },
  },
});
const kinds = parseKinds(values.kinds);
const replay = values.kinds ? ` --kinds ${values.kinds}` : '';
const count = Number(values.schedules);
const from = Number(values.from);
const seeds = values.seeds
  ? values.seeds.split(',').map(Number)
  : Array.from({ length: count }, (_, i) => from + i);

const requests = new Map<string, number>();
const scratch = mkdtempSync(join(tmpdir(), 'seesaw-soak-'));
const stores = await startLocalStores({ scratchDir: scratch });
const lanes = await Promise.all(
  Array.from({ length: Number(values.lanes) }, async (_, i) => {
    const clients = createClients({
      tableName: `seesaw-soak-${i}`,
      bucketName: `seesaw-soak-${i}`,
      region: 'us-east-1',
      dynamoEndpoint: stores.dynamoEndpoint,
      s3Endpoint: stores.s3Endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureTableAndBucket(clients);
    for (const client of [clients.doc, clients.s3] as { send: (...a: never[]) => unknown }[]) {
      const send = client.send.bind(client);
      client.send = (...args: never[]) => {
        const name = (args[0] as unknown as { constructor: { name: string } }).constructor.name;
        requests.set(name, (requests.get(name) ?? 0) + 1);
        return send(...args);
      };
    }
    return createLane(clients);
  }),
);
const started = Date.now();
let done = 0;
const failed: ScheduleResult[] = [];
let rounds = 0;
const seen: ScheduleResult[] = [];
const results = await runSchedules(
  lanes,
  seeds,
  (r) => {
    seen.push(r);
    done += 1;
    rounds += r.rounds;
    if (r.violations.length) {
      failed.push(r);
      console.error(failureReport(r, `npm run soak -- --seeds ${r.seed}${replay}`));
    }
    if (done % 100 === 0 || done === seeds.length) {
      console.log(
        `${done}/${seeds.length} schedules, ${failed.length} failed, ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
      // The table so far, so a run cut short still leaves its figures.
      if (done % 100 === 0) console.log(scenarioTable(seen).join('\n'));
    }
  },
  kinds,
);
console.log(
  `schedules: ${done} run, ${failed.length} failed (${((Date.now() - started) / 1000).toFixed(1)} s, ${rounds} rounds)`,
);
console.log(batchSummary(results).join('\n'));
if (process.env.SEESAW_SOAK_REQUESTS)
  console.log(`requests: ${[...requests].map(([k, v]) => `${k} ${v}`).join(', ')}`);
if (failed.length) console.log(`failed seeds: ${failed.map((r) => r.seed).join(',')}`);
await stores.close();
rmSync(scratch, { recursive: true, force: true });
process.exitCode = failed.length ? 1 : 0;
