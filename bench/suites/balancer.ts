// Balancer figures: one whole run in memory over 10,000 nodes and 100,000 VMs with its phase breakdown
// (target ≤ 100 ms CPU; timed in a process of its own under the balancer Lambda's heap flags, and
// under V8's defaults for comparison), the node items each shard's run reads, and the store operations of one run
// as the cluster grows, against a dynalite started by the suite (the figures the cost estimate uses).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { balancerHeapFlags } from '../../functions/balancer/heap.ts';
import { runBalancer } from '../../functions/balancer/run.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { BalancingConfig, Weights } from '../../shared/domain/types.ts';
import { ensureTableAndBucket, localClients, startLocalStores } from '../../shared/local/stores.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import type { NodeRecord, ReportedVm } from '../../shared/storage/nodes.ts';
import { seedCluster } from '../../shared/storage/seed.ts';
import type { DecisionFigures } from './_balancer-run.ts';

export const name = 'balancer';

const NOW = 1_700_000_000_000;
const WEIGHTS: Weights = { cpu: 1, io: 0.2, mem: 0.05 };
const quiet = { info() {}, warn() {} };

/** A skewed cluster in memory: half the nodes carry three times the load of the other half. */
export function clusterRecords(nodes: number, vmsPerNode: number, seed: number): NodeRecord[] {
  const rng = createRng(seed);
  const records: NodeRecord[] = [];
  for (let n = 0; n < nodes; n++) {
    const id = `node-${String(n).padStart(5, '0')}`;
    const heavy = n % 2 === 0;
    const vms: Record<string, ReportedVm> = {};
    let total = 0;
    for (let v = 0; v < vmsPerNode; v++) {
      const factors = { cpu: (heavy ? 0.3 : 0.1) * (0.5 + rng.next()), io: rng.next() * 0.2, mem: 0.25 };
      const load = WEIGHTS.cpu * factors.cpu + WEIGHTS.io * factors.io + WEIGHTS.mem * factors.mem;
      total += load;
      vms[`${id}-vm${v}`] = {
        factors,
        load,
        memPages: 64,
        pinned: false,
        fence: 1,
        busy: false,
        digest: 'd',
      };
    }
    records.push({
      id,
      weights: WEIGHTS,
      capacity: 4,
      memCapacityPages: 1 << 20,
      draining: false,
      labels: {},
      incarnation: 'bench',
      leaseUntil: NOW + 60_000,
      registeredAt: NOW - 60_000,
      updatedAt: NOW,
      report: { at: NOW - 1000, total, vms, steal: 0, utilisation: total / 4 },
    });
  }
  return records;
}

/**
 * Clients whose document client serves the config and the node items from memory (no learning
 * history), so a whole dry run can be timed without store I/O.
 */
export function memoryClients(records: NodeRecord[], config: BalancingConfig): Clients {
  const send = async (command: { input: Record<string, unknown> }) => {
    const { Key, IndexName, ExpressionAttributeValues } = command.input as {
      Key?: { pk: string };
      IndexName?: string;
      ExpressionAttributeValues?: Record<string, unknown>;
    };
    if (Key?.pk.startsWith('CONFIG#')) return { Item: { config, version: 1, updatedAt: NOW } };
    if (IndexName === 'byKind' && ExpressionAttributeValues?.[':k'] === 'NODE')
      return { Items: records, Count: records.length };
    return { Items: [], Count: 0 };
  };
  return { doc: { send }, tableName: 'memory', bucketName: 'memory' } as unknown as Clients;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** The ≤ 100 ms of CPU issue 17 sets for a whole run at 10,000 nodes × 100,000 VMs. */
const TARGET_CPU_MS = 100;

/** A run's CPU by phase in words: input building, decideRound, the orders, the record, the rest. */
function breakdown(phases: Record<string, number>): string {
  const ms = (key: string) => phases[key] ?? 0;
  const rest = round2(ms('readMs') + ms('learnMs'));
  return (
    `input building ${ms('inputMs')} ms, decideRound ${ms('decideMs')} ms, ` +
    `orders ${ms('writeMs')} ms, record ${ms('recordMs')} ms, reading and learning ${rest} ms`
  );
}

/**
 * The whole dry run at `nodes` × `vmsPerNode`, timed in a process of its own (_balancer-run.ts) under
 * the given V8 flags: the balancer Lambda's heap flags, or none for V8's defaults. With `fresh`, each
 * run reads a new copy of the node items (see _balancer-run.ts).
 */
async function decisionTime(nodes: number, vmsPerNode: number, reps: number, flags: string[], fresh = false) {
  const entry = join(dirname(fileURLToPath(import.meta.url)), '_balancer-run.ts');
  const tsx = import.meta.resolve('tsx');
  const args = [String(nodes), String(vmsPerNode), String(reps), ...(fresh ? ['fresh'] : [])];
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [...flags, '--import', tsx, entry, ...args],
    { maxBuffer: 1 << 20 },
  );
  const figures = JSON.parse(stdout.trim().split('\n').at(-1) as string) as DecisionFigures;
  return { ...figures, targetCpuMs: TARGET_CPU_MS, met: figures.runCpuMs <= TARGET_CPU_MS };
}

/**
 * Node items each shard's run reads, against dynalite: all shards of one round over a seeded fleet.
 * Reads drop to about N/shards because a run queries only the buckets its round deals it.
 */
async function shardReads(
  endpoints: { dynamoEndpoint: string; s3Endpoint: string },
  nodes: number,
  shards: number,
) {
  const suffix = `shards-${nodes}-${Date.now().toString(36)}`;
  const clients = localClients(endpoints, { tableName: `bench-${suffix}`, bucketName: `bench-${suffix}` });
  await ensureTableAndBucket(clients);
  await seedCluster(clients, clusterRecords(nodes, 2, 13), NOW);
  const read: number[] = [];
  const itemReads: number[] = [];
  const wall: number[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const start = performance.now();
    const record = await runBalancer(
      { clients, clock: () => NOW, rng: createRng(shard), log: quiet },
      { round: 5, shard, shards, dryRun: true },
    );
    wall.push(performance.now() - start);
    read.push(record.nodes.read);
    itemReads.push(record.usage.reads);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    nodes,
    shards,
    readsPerShardRun: round2(mean(read)),
    maxReadsPerShardRun: Math.max(...read),
    /** Every item the run read (node items plus the config), as the meter counts them. */
    itemReadsPerShardRun: round2(mean(itemReads)),
    totalNodeReads: read.reduce((a, b) => a + b, 0),
    runMs: Math.round(median(wall)),
  };
}

async function storeOps(
  endpoints: { dynamoEndpoint: string; s3Endpoint: string },
  nodes: number,
  vmsPerNode: number,
) {
  const suffix = `${nodes}-${Date.now().toString(36)}`;
  const clients = localClients(endpoints, {
    tableName: `bench-balancer-${suffix}`,
    bucketName: `bench-balancer-${suffix}`,
  });
  await ensureTableAndBucket(clients);
  const records = clusterRecords(nodes, vmsPerNode, 11);
  const seedStart = performance.now();
  await seedCluster(clients, records, NOW);
  const seedMs = performance.now() - seedStart;
  const start = performance.now();
  const record = await runBalancer(
    { clients, clock: () => NOW, rng: createRng(1), log: quiet },
    { round: 1 },
  );
  const runMs = performance.now() - start;
  const u = record.usage;
  return {
    nodes,
    vms: nodes * vmsPerNode,
    exchanges: record.exchanges,
    orders: record.ordersWritten,
    reads: u.reads,
    writes: u.writes,
    readCapacity: round2(u.readCapacity),
    writeCapacity: round2(u.writeCapacity),
    readsPerNode: round2(u.reads / nodes),
    writesPerExchange: record.exchanges ? round2(u.writes / record.exchanges) : null,
    runMs: Math.round(runMs),
    seedMs: Math.round(seedMs),
  };
}

type Ops = Awaited<ReturnType<typeof storeOps>>;

/** Scales the largest measured run linearly in nodes (reads, exchanges and writes all grow with N). */
function extrapolate(from: Ops, nodes: number) {
  const k = nodes / from.nodes;
  return {
    nodes,
    vms: from.vms * k,
    extrapolatedFrom: from.nodes,
    exchanges: Math.round(from.exchanges * k),
    orders: Math.round(from.orders * k),
    reads: Math.round(from.reads * k),
    writes: Math.round(from.writes * k),
    readCapacity: round2(from.readCapacity * k),
    writeCapacity: round2(from.writeCapacity * k),
  };
}

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const reps = ctx.quick ? 3 : 7;
  const big = await decisionTime(10_000, 10, reps, balancerHeapFlags());
  ctx.log(
    `whole dry run over ${big.nodes} nodes × ${big.vms} VMs under the Lambda's heap flags ` +
      `(${big.heapFlags.join(' ')}), median of ${reps} warm runs: ` +
      `${big.runMs} ms (CPU ${big.runCpuMs} ms, fastest ${big.minRunCpuMs} ms, first run ${big.firstRunCpuMs} ms); ` +
      `CPU by phase: ${breakdown(big.phasesCpuMs)}; ${big.moves} moves, CV ${big.cvBefore} → ${big.cvAfter}; ` +
      `target ≤ ${TARGET_CPU_MS} ms CPU: ${big.met ? 'met' : 'MISSED'}`,
  );
  const steady = big.steadyState;
  if (steady) {
    ctx.log(
      `the same process's runs ${steady.warmUpRuns}–${steady.warmUpRuns + steady.runs - 1} (a container that has ` +
        `served a while): CPU median ${steady.runCpuMs} ms, mean ${steady.meanRunCpuMs} ms ` +
        `(fastest ${steady.minRunCpuMs}, slowest ${steady.maxRunCpuMs} ms); CPU by phase: ${breakdown(steady.phasesCpuMs)}`,
    );
  }
  // The same run under V8's default heap sizes, for comparison (what the flags are worth).
  const unflagged = await decisionTime(10_000, 10, reps, []);
  const defaultHeap = {
    runCpuMs: unflagged.runCpuMs,
    minRunCpuMs: unflagged.minRunCpuMs,
    phasesCpuMs: unflagged.phasesCpuMs,
  };
  ctx.log(
    `the same under V8's default heap sizes: CPU ${defaultHeap.runCpuMs} ms (fastest ${defaultHeap.minRunCpuMs} ms); ` +
      `CPU by phase: ${breakdown(defaultHeap.phasesCpuMs)}`,
  );
  // The same under the Lambda's flags, each run reading a new copy of the items (as the Lambda reads
  // them from the store) rather than the ones the process keeps: what its collector then works on.
  const freshRun = await decisionTime(10_000, 10, reps, balancerHeapFlags(), true);
  const freshItems = {
    runCpuMs: freshRun.runCpuMs,
    minRunCpuMs: freshRun.minRunCpuMs,
    phasesCpuMs: freshRun.phasesCpuMs,
  };
  ctx.log(
    `the same with new items each run (as read from the store; copying them not timed): CPU ${freshItems.runCpuMs} ms ` +
      `(fastest ${freshItems.minRunCpuMs} ms); CPU by phase: ${breakdown(freshItems.phasesCpuMs)}`,
  );

  const scratch = mkdtempSync(join(tmpdir(), 'seesaw-bench-balancer-'));
  const stores = await startLocalStores({ scratchDir: scratch });
  const sizes = ctx.quick ? [10, 100, 300] : [10, 100, 1000];
  const measured: Ops[] = [];
  let sharded: Awaited<ReturnType<typeof shardReads>>;
  try {
    sharded = await shardReads(stores, ctx.quick ? 300 : 1000, 10);
    ctx.log(
      `node items per shard run, ${sharded.nodes} nodes in ${sharded.shards} shards: ${sharded.readsPerShardRun} ` +
        `(max ${sharded.maxReadsPerShardRun}, all shards ${sharded.totalNodeReads}); run ${sharded.runMs} ms`,
    );
    for (const nodes of sizes) {
      const ops = await storeOps(stores, nodes, 5);
      measured.push(ops);
      ctx.log(
        `store ops per run, ${ops.nodes} nodes: ${ops.reads} reads (${ops.readsPerNode}/node, ${ops.readCapacity} RCU), ` +
          `${ops.writes} writes (${ops.writeCapacity} WCU) for ${ops.exchanges} exchanges / ${ops.orders} orders; run ${ops.runMs} ms`,
      );
    }
  } finally {
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  }
  const largest = measured[measured.length - 1] as Ops;
  const tenThousand = extrapolate(largest, 10_000);
  ctx.log(
    `store ops per run, 10000 nodes (extrapolated from ${largest.nodes}): ${tenThousand.reads} reads ` +
      `(${tenThousand.readCapacity} RCU), ${tenThousand.writes} writes (${tenThousand.writeCapacity} WCU)`,
  );
  return {
    decision: { ...big, defaultHeap, freshItems },
    shardReads: sharded,
    storeOps: [...measured, tenThousand],
  };
}
