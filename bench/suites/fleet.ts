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

/** Assumed us-east-1 on-demand list prices (docs/deploy.md): dollars per read and per write request unit. */
const PRICE = { rru: 0.125 / 1e6, wru: 0.625 / 1e6 };
/** One balancing round a minute for 30 days. */
const ROUNDS_PER_MONTH = 43_200;

/**
 * What the measured round costs a month at 100, 1,000 and 10,000 nodes, every round as measured:
 * the measured size as it is, the others scaled linearly in nodes from it (and marked so). Writes are
 * the table's units only (dynalite reports no index units) on the benchmark's skewed first round, so
 * they bound the converging months, not the steady state.
 */
export function monthlyCost(round: { nodes: number; readCapacity: number; writeCapacity: number }) {
  return [100, 1000, 10_000].map((nodes) => {
    const k = nodes / round.nodes;
    const rcu = round.readCapacity * k;
    const wcu = round.writeCapacity * k;
    return {
      nodes,
      basis: k === 1 ? 'measured' : `extrapolated from ${round.nodes.toLocaleString('en-US')} nodes`,
      rcuPerRound: round2(rcu),
      wcuPerRound: round2(wcu),
      readsUsdPerMonth: round2(rcu * ROUNDS_PER_MONTH * PRICE.rru),
      skewedWritesUsdPerMonth: round2(wcu * ROUNDS_PER_MONTH * PRICE.wru),
    };
  });
}

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const nodes = ctx.quick ? 200 : 1000;
  const shards = 10;
  const scratch = mkdtempSync(join(tmpdir(), 'seesaw-bench-fleet-'));
  const stores = await startLocalStores({ scratchDir: scratch });
  let running = true;
  let writers: Promise<void> | undefined;
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
    let reports = 0;
    writers = (async () => {
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
    return { round: figures, monthly: monthlyCost(figures) };
  } finally {
    // A round that failed leaves the writers running: stop them before the stores close. Otherwise
    // either dynalite's close waits for their connections, which keep writing, and the suite never
    // ends, or a write meets the closed port and its unhandled rejection ends the bench unwritten.
    running = false;
    await writers?.catch(() => {});
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
