// Balancer figures: the in-memory decision time of one run over 10,000 nodes and 100,000 VMs
// (target < 200 ms), and the store operations of one run as the cluster grows, against a dynalite
// started by the suite (the figures the cost estimate is computed from).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { roundView } from '../../functions/balancer/input.ts';
import { runBalancer } from '../../functions/balancer/run.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { decideRound } from '../../shared/domain/decide.ts';
import { activePenalties, applyVmPenalties, holdBackPairs } from '../../shared/domain/learning.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { Weights } from '../../shared/domain/types.ts';
import { ensureTableAndBucket, localClients, startLocalStores } from '../../shared/local/stores.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { kindIndexKey, nodeKey, ownerIndexKey, vmKey } from '../../shared/storage/keys.ts';
import type { NodeRecord, ReportedVm } from '../../shared/storage/nodes.ts';

export const name = 'balancer';

const NOW = 1_700_000_000_000;
const WEIGHTS: Weights = { cpu: 1, io: 0.2, mem: 0.05 };
const quiet = { info() {}, warn() {} };

/** A skewed cluster in memory: half the nodes carry three times the load of the other half. */
function clusterRecords(nodes: number, vmsPerNode: number, seed: number): NodeRecord[] {
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** The in-memory part of one run (input from node items, penalties, decision): what the 200 ms target covers. */
function decisionTime(nodes: number, vmsPerNode: number, reps: number) {
  const records = clusterRecords(nodes, vmsPerNode, 7);
  const config = { ...DEFAULT_BALANCING_CONFIG, maxMigrationsPerCluster: 1_000_000 };
  const whole: number[] = [];
  const wholeCpu: number[] = [];
  const decideOnly: number[] = [];
  const decideCpu: number[] = [];
  let moves = 0;
  let cvBefore = 0;
  let cvAfter = 0;
  for (let r = 0; r < reps; r++) {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const view = roundView(records, {
      now: NOW,
      round: r,
      shard: 0,
      shards: 1,
      reportStaleMs: 30_000,
      run: 'bench',
    });
    const active = activePenalties([], NOW);
    const input = { ...view.input, vms: applyVmPenalties(view.input.vms, active) };
    const decideStart = performance.now();
    const cpuDecide = process.cpuUsage();
    const decision = holdBackPairs(decideRound(input, config, createRng(r)), active, view.loads).decision;
    const end = performance.now();
    const usedDecide = process.cpuUsage(cpuDecide);
    const used = process.cpuUsage(cpu);
    decideCpu.push((usedDecide.user + usedDecide.system) / 1000);
    whole.push(end - start);
    wholeCpu.push((used.user + used.system) / 1000);
    decideOnly.push(end - decideStart);
    moves = decision.moves.length;
    cvBefore = decision.before.cv;
    cvAfter = decision.after.cv;
  }
  return {
    nodes,
    vms: nodes * vmsPerNode,
    runMs: round2(median(whole)),
    /** CPU time of the same span (user + system): steadier than wall time on a shared machine. */
    runCpuMs: round2(median(wholeCpu)),
    decideRoundMs: round2(median(decideOnly)),
    decideRoundCpuMs: round2(median(decideCpu)),
    moves,
    cvBefore: round2(cvBefore * 1000) / 1000,
    cvAfter: round2(cvAfter * 1000) / 1000,
    targetMs: 200,
    met: median(whole) < 200,
  };
}

/** Writes node items (with reports) and RUNNING VM items in batches of 25. */
async function seedStore(clients: Clients, records: NodeRecord[]): Promise<void> {
  const items: Record<string, unknown>[] = [];
  for (const record of records) {
    items.push({ ...nodeKey(record.id), ...kindIndexKey('NODE', record.id), ...record });
    for (const [id, vm] of Object.entries(record.report?.vms ?? {})) {
      items.push({
        ...vmKey(id),
        ...ownerIndexKey(record.id, id),
        ...kindIndexKey('VM', id),
        id,
        owner: record.id,
        state: 'RUNNING',
        fence: vm.fence,
        guest: { kind: 'cpu' },
        memPages: vm.memPages,
        pinned: false,
        moves: 0,
        createdAt: NOW,
        updatedAt: NOW,
      });
    }
  }
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  const writeBatch = async (batch: Record<string, unknown>[]) => {
    let pending: Record<string, unknown[]> | undefined = {
      [clients.tableName]: batch.map((Item) => ({ PutRequest: { Item } })),
    };
    while (pending && Object.keys(pending).length > 0) {
      const out = await clients.doc.send(new BatchWriteCommand({ RequestItems: pending as never }));
      pending = out.UnprocessedItems as Record<string, unknown[]> | undefined;
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < batches.length) await writeBatch(batches[next++] as Record<string, unknown>[]);
    }),
  );
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
  await seedStore(clients, records);
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
  const big = decisionTime(10_000, 10, ctx.quick ? 3 : 7);
  ctx.log(
    `decision over ${big.nodes} nodes × ${big.vms} VMs: ${big.runMs} ms per run (CPU ${big.runCpuMs} ms; of which decideRound ${big.decideRoundMs} ms, CPU ${big.decideRoundCpuMs} ms), ` +
      `${big.moves} moves, CV ${big.cvBefore} → ${big.cvAfter}; target < 200 ms: ${big.met ? 'met' : 'MISSED'}`,
  );

  const scratch = mkdtempSync(join(tmpdir(), 'seesaw-bench-balancer-'));
  const stores = await startLocalStores({ scratchDir: scratch });
  const sizes = ctx.quick ? [10, 100, 300] : [10, 100, 1000];
  const measured: Ops[] = [];
  try {
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
  return { decision: big, storeOps: [...measured, tenThousand] };
}
