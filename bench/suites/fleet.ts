// A real sharded round against the local stack: 1,000 nodes whose lightweight simulated agents keep
// writing load reports (lease renewals) while the ten shard runs of one round read, decide, claim and
// order; then the order takers on the nodes that got orders decline them. Measures the round's reads,
// writes, capacity units and wall time (`npm run bench -- fleet`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBalancer } from '../../functions/balancer/run.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { createRng } from '../../shared/domain/rng.ts';
import { ensureTableAndBucket, localClients, startLocalStores } from '../../shared/local/stores.ts';
import { eachLimited } from '../../shared/runtime/pool.ts';
import { putBalancingConfig } from '../../shared/storage/config-store.ts';
import { renewLease } from '../../shared/storage/nodes.ts';
import { seedCluster } from '../../shared/storage/seed.ts';
import { abortMigration, listVmsForNode } from '../../shared/storage/vms.ts';
import { clusterRecords } from './balancer.ts';

export const name = 'fleet';

const quiet = { info() {}, warn() {} };
const round2 = (x: number) => Math.round(x * 100) / 100;

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const nodes = ctx.quick ? 200 : 1000;
  const shards = 10;
  const scratch = mkdtempSync(join(tmpdir(), 'seesaw-bench-fleet-'));
  const stores = await startLocalStores({ scratchDir: scratch });
  try {
    const clients = localClients(stores, { tableName: 'bench-fleet', bucketName: 'bench-fleet' });
    await ensureTableAndBucket(clients);
    const now = Date.now();
    await putBalancingConfig(clients, { ...DEFAULT_BALANCING_CONFIG, shards }, now);
    const records = clusterRecords(nodes, 5, 3).map((r) => ({
      ...r,
      leaseUntil: now + 600_000,
      report: r.report ? { ...r.report, at: now } : undefined,
    }));
    await seedCluster(clients, records as typeof records, now);

    // Report writers: every agent renews its lease with its report, over and over, while the round runs.
    let running = true;
    let reports = 0;
    const writers = (async () => {
      while (running) {
        await eachLimited(records, 8, async (r) => {
          if (!running) return;
          await renewLease(clients, {
            id: r.id,
            incarnation: r.incarnation,
            now: Date.now(),
            leaseMs: 600_000,
            report: {
              ...(r.report as NonNullable<typeof r.report>),
              at: Date.now(),
            },
          });
          reports++;
        });
      }
    })();

    const start = performance.now();
    const runs = await Promise.all(
      Array.from({ length: shards }, (_, shard) =>
        runBalancer(
          { clients, clock: Date.now, rng: createRng(shard + 1), log: quiet },
          { shard, shards, round: 1 },
        ),
      ),
    );
    const roundMs = performance.now() - start;
    running = false;
    await writers;

    // Order takers: the sources that got orders find them through byOwner and decline them.
    const sources = [
      ...new Set(runs.flatMap((r) => r.orders.filter((o) => o.outcome === 'written').map((o) => o.from))),
    ];
    let declined = 0;
    await eachLimited(sources, 8, async (node) => {
      for (const vm of await listVmsForNode(clients, node)) {
        if (vm.migration?.phase !== 'ORDERED') continue;
        await abortMigration(clients, vm.id, vm.migration.id, Date.now());
        declined++;
      }
    });

    const sum = (f: (r: (typeof runs)[number]) => number) => runs.reduce((a, r) => a + f(r), 0);
    const figures = {
      nodes,
      vms: nodes * 5,
      shards,
      reads: sum((r) => r.usage.reads),
      writes: sum((r) => r.usage.writes),
      readCapacity: round2(sum((r) => r.usage.readCapacity)),
      writeCapacity: round2(sum((r) => r.usage.writeCapacity)),
      nodeReadsPerShardRun: round2(sum((r) => r.nodes.read) / shards),
      exchanges: sum((r) => r.exchanges),
      ordersWritten: sum((r) => r.ordersWritten),
      ordersLost: sum((r) => r.ordersLost),
      roundWallMs: Math.round(roundMs),
      slowestShardMs: Math.max(...runs.map((r) => r.durationMs)),
      reportsWrittenMeanwhile: reports,
      ordersDeclined: declined,
    };
    ctx.log(
      `one round, ${nodes} nodes in ${shards} shards with agents reporting: ${figures.reads} reads ` +
        `(${figures.readCapacity} RCU), ${figures.writes} writes (${figures.writeCapacity} WCU), ` +
        `${figures.exchanges} exchanges / ${figures.ordersWritten} orders (${figures.ordersLost} lost); ` +
        `${figures.nodeReadsPerShardRun} node items per shard run; round ${figures.roundWallMs} ms ` +
        `(slowest shard ${figures.slowestShardMs} ms) while agents wrote ${reports} reports`,
    );
    return { round: figures };
  } finally {
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
