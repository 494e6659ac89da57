// One balancer run: read the config and the nodes, decide the round with the shared domain, claim
// each exchanging pair, write the orders with fence conditions, and record what happened. Any number
// of runs may overlap; the conditional writes alone keep them from double-booking a node or a VM.
import { randomBytes } from 'node:crypto';
import { decideRound } from '../../shared/domain/decide.ts';
import {
  activePenalties,
  applyVmPenalties,
  DEFAULT_LEARNING,
  detectPingPong,
  type ExchangeRecord,
  estimateConvergence,
  evaluateExchanges,
  exchangeRecords,
  expectedImbalance,
  holdBackPairs,
  type LearningOptions,
  penalise,
} from '../../shared/domain/learning.ts';
import { checkShard, roundAt } from '../../shared/domain/shards.ts';
import type { Move, PairDecision, Reason, Rng } from '../../shared/domain/types.ts';
import type { MigrationOrder } from '../../shared/domain/vm-state.ts';
import type { Logger as SharedLogger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { getBalancingConfig } from '../../shared/storage/config-store.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { claimNode, listNodes, releaseClaim } from '../../shared/storage/nodes.ts';
import {
  EXPECTED_NODES,
  type LearnRecord,
  listLearningSince,
  putLearning,
  putRun,
  type RunOrder,
  type RunRecord,
} from '../../shared/storage/runs.ts';
import { newUsage } from '../../shared/storage/table.ts';
import { orderMigration } from '../../shared/storage/vms.ts';
import { roundView } from './input.ts';
import { meteredClients } from './metered.ts';

/** The slice of the logger the balancer uses. */
type Logger = Pick<SharedLogger, 'info' | 'warn'>;

export interface BalancerDeps {
  clients: Clients;
  clock: () => number;
  rng: Rng;
  log: Logger;
}

export interface BalancerOptions {
  /** This run's shard, 0-based (default 0). */
  shard?: number;
  /** Shard count (default: the config's `shards`). */
  shards?: number;
  /** Round number (default: floor(now / roundMs)). */
  round?: number;
  /** Decide and return the record without writing anything. */
  dryRun?: boolean;
  /** Length of a round for deriving the round number from the clock (default 60 s, the schedule's rate). */
  roundMs?: number;
  /** How long a claim books a node (default 10 s): long enough for the agents' next reports to show the order. */
  claimTtlMs?: number;
  /** Deadline of each order (default 60 s); past it, the order may be aborted. */
  orderDeadlineMs?: number;
  /** The CV the convergence estimate aims for (default 0.05). */
  targetCv?: number;
  learning?: Partial<LearningOptions>;
  /** Concurrent exchanges being written (default 8). */
  concurrency?: number;
}

export const BALANCER_DEFAULTS = {
  roundMs: 60_000,
  claimTtlMs: 10_000,
  orderDeadlineMs: 60_000,
  targetCv: 0.05,
  concurrency: 8,
} as const;

/** A run id that sorts by time and cannot collide between runs started at the same moment. */
export function newRunId(now: number, shard: number): string {
  return `run-${now.toString(36).padStart(9, '0')}-s${shard}-${randomBytes(4).toString('hex')}`;
}

async function inPool<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Runs one shard of one balancing round and returns its record (stored unless `dryRun`). */
export async function runBalancer(deps: BalancerDeps, options: BalancerOptions = {}): Promise<RunRecord> {
  const usage = newUsage();
  const clients = meteredClients(deps.clients, usage);
  const now = deps.clock();
  const dryRun = options.dryRun ?? false;
  const learnOptions: LearningOptions = { ...DEFAULT_LEARNING, ...options.learning };
  const config = await getBalancingConfig(clients);
  const shards = options.shards ?? config.shards;
  const shard = options.shard ?? 0;
  checkShard(shard, shards);
  const round = options.round ?? roundAt(now, options.roundMs ?? BALANCER_DEFAULTS.roundMs);
  const id = newRunId(now, shard);

  const records = await listNodes(clients);
  const view = roundView(records, {
    now,
    round,
    shard,
    shards,
    reportStaleMs: config.reportStaleMs,
    run: id,
  });
  for (const skip of view.skipped)
    deps.log.info({ run: id, node: skip.node, reason: skip.reason }, 'node left out');

  // What earlier runs learned: exchanges to judge now that the VMs have moved, and live penalties.
  const history = await listLearningSince(clients, now - learnOptions.windowMs);
  const judged = new Set(history.flatMap((h) => h.evaluated));
  const recent: ExchangeRecord[] = history.flatMap((h) => h.exchanges);
  const pending = recent.filter((e) => !judged.has(e.id));
  const outcomes = evaluateExchanges(pending, view.observe, learnOptions);
  const previous = history.flatMap((h) => h.penalties);
  // Exchanges that did not pay off are penalised before this round decides, so it already heeds them.
  const fromOutcomes = penalise(
    { outcomes, pingPong: [], exchanges: pending },
    previous,
    config,
    now,
    learnOptions,
  );
  const active = activePenalties([...previous, ...fromOutcomes], now);
  // The auto trigger measures noise against what the shard's last run left untouched.
  const roundMs = options.roundMs ?? BALANCER_DEFAULTS.roundMs;
  const last = [...history].reverse().find((h) => h.shard === shard && h.expected !== undefined);
  const expected = last && now - last.at <= 5 * roundMs ? last.expected : undefined;
  const input = {
    ...view.input,
    vms: applyVmPenalties(view.input.vms, active),
    ...(expected ? { expected } : {}),
  };

  const decideStart = performance.now();
  const decided = decideRound(input, config, deps.rng);
  const draining = new Set(view.input.nodes.filter((n) => n.draining).map((n) => n.id));
  const held = holdBackPairs(decided, active, view.loads, draining);
  const decision = held.decision;
  const decideMs = performance.now() - decideStart;

  const orders: RunOrder[] = [];
  const written: Move[] = [];
  const exchanging = decision.pairs.filter((p) => p.moves.length > 0);
  let exchanges = 0;
  if (dryRun) {
    exchanges = exchanging.length;
    for (const [n, move] of decision.moves.entries()) {
      const fence = view.fenceOf(move.vm, move.from);
      orders.push({
        vm: move.vm,
        from: move.from,
        to: move.to,
        migration: `${id}-${n}`,
        outcome: 'dry-run',
        ...(fence !== undefined ? { fence } : {}),
      });
    }
  } else {
    const numbered: { pair: PairDecision; first: number }[] = [];
    let first = 0;
    for (const pair of exchanging) {
      numbered.push({ pair, first });
      first += pair.moves.length;
    }
    await inPool(numbered, options.concurrency ?? BALANCER_DEFAULTS.concurrency, async ({ pair, first }) => {
      const result = await carryOut(clients, deps.log, pair, first, {
        id,
        clock: deps.clock,
        options,
        fenceOf: view.fenceOf,
      });
      orders.push(...result.orders);
      written.push(...result.written);
      if (result.written.length > 0) exchanges++;
    });
  }

  const position = new Map(decision.moves.map((m, k) => [m.vm, k]));
  orders.sort((a, b) => (position.get(a.vm) ?? 0) - (position.get(b.vm) ?? 0));
  const planned = dryRun ? decision.moves : written;
  const after =
    planned.length === decision.moves.length
      ? decision.after
      : expectedImbalance(view.loads, planned, draining);
  const newExchanges = exchangeRecords(id, now, planned, view.loads);
  const pingPong = detectPingPong(planned, recent);
  const fromPingPong = penalise(
    { outcomes: [], pingPong, exchanges: [] },
    [...previous, ...fromOutcomes],
    config,
    now,
    learnOptions,
  );
  const penalties = [...fromOutcomes, ...fromPingPong];
  for (const penalty of penalties) deps.log.info({ run: id, ...penalty }, 'learned a penalty');
  const points = history.map((h) => ({ round: h.round, cv: h.cv }));
  const convergence = estimateConvergence(
    points,
    { round, cv: decision.before.cv, expectedCv: after.cv },
    options.targetCv ?? BALANCER_DEFAULTS.targetCv,
  );

  const reasons: Partial<Record<Reason['code'], number>> = {};
  for (const pair of decision.pairs) reasons[pair.reason.code] = (reasons[pair.reason.code] ?? 0) + 1;
  const paired = new Set(decision.pairs.flatMap((p) => [p.requester, p.selected]));
  for (const s of decision.skipped) paired.add(s.node);
  const unpaired = view.input.nodes
    .filter((n) => !paired.has(n.id))
    .map((n) => ({ node: n.id, reason: 'not paired this round' }));
  const skipped = [...view.skipped, ...decision.skipped, ...unpaired];
  const ordersWritten = orders.filter((o) => o.outcome === 'written').length;
  const record: RunRecord = {
    id,
    at: now,
    shard,
    shards,
    round,
    dryRun,
    config,
    nodes: { read: records.length, inShard: view.inShard, considered: view.input.nodes.length },
    pairs: decision.pairs,
    reasons,
    exchanges,
    orders,
    ordersWritten,
    ordersLost: orders.filter(
      (o) => o.outcome === 'lost' || o.outcome === 'unclaimed' || o.outcome === 'failed',
    ).length,
    skipped,
    before: decision.before,
    after,
    usage,
    learning: {
      evaluated: outcomes,
      penalties,
      active: active.size,
      heldBack: held.heldBack.map((p) => `${p.requester}|${p.selected}`),
    },
    convergence,
    ...(decision.trigger ? { trigger: decision.trigger } : {}),
    decideMs,
    durationMs: 0,
  };

  if (!dryRun) {
    const learned: LearnRecord = {
      run: id,
      at: now,
      round,
      shard,
      cv: decision.before.cv,
      exchanges: newExchanges,
      evaluated: outcomes.map((o) => o.exchange),
      penalties,
      expected: untouchedLoads(view.loads, decided.moves),
    };
    await putLearning(clients, learned, learnOptions.windowMs);
    // The record counts its own write (capacity estimated at 1 unit per KB, as DynamoDB bills it).
    usage.writes += 1;
    usage.writeCapacity += Math.ceil(Buffer.byteLength(JSON.stringify(record)) / 1024);
    record.durationMs = deps.clock() - now;
    record.usage = { ...usage };
    const stored = await putRun(deps.clients, record);
    if (stored.omitted) record.omitted = stored.omitted;
  } else {
    record.durationMs = deps.clock() - now;
    record.usage = { ...usage };
  }
  deps.log.info(
    {
      run: id,
      shard,
      round,
      dryRun,
      nodes: record.nodes,
      exchanges,
      ordersWritten,
      ordersLost: record.ordersLost,
      cvBefore: record.before.cv,
      cvAfter: record.after.cv,
      reads: usage.reads,
      writes: usage.writes,
      decideMs: Math.round(decideMs * 10) / 10,
    },
    'balancer run',
  );
  return record;
}

export interface RunContext {
  id: string;
  /** Read at each exchange: a long run must not book nodes with claims that lapsed while it ran. */
  clock: () => number;
  options: Pick<BalancerOptions, 'claimTtlMs' | 'orderDeadlineMs'>;
  fenceOf: (vm: string, node: string) => number | undefined;
}

/**
 * One exchange (also an applied plan's): claim both nodes (in id order, so two runs meet on the same node first), then order
 * each move on its VM item. A lost claim or a changed VM is a normal outcome of overlapping runs.
 */
export async function carryOut(
  clients: Clients,
  log: Logger,
  pair: Pick<PairDecision, 'requester' | 'selected' | 'moves'>,
  first: number,
  run: RunContext,
): Promise<{ orders: RunOrder[]; written: Move[] }> {
  const orders: RunOrder[] = [];
  const written: Move[] = [];
  const migrationId = (k: number) => `${run.id}-${first + k}`;
  const now = run.clock();
  const until = now + (run.options.claimTtlMs ?? BALANCER_DEFAULTS.claimTtlMs);
  const claimed: string[] = [];
  const nodes = [pair.requester, pair.selected].sort();
  try {
    for (const node of nodes) {
      await claimNode(clients, node, run.id, now, until);
      claimed.push(node);
    }
  } catch (error) {
    const taken = nodes[claimed.length];
    const lost = error instanceof ConditionFailed;
    if (lost) log.info({ run: run.id, pair: nodes, node: taken }, 'claim lost to another run');
    else log.warn({ run: run.id, pair: nodes, node: taken, err: error }, 'claim failed');
    await releaseAll(clients, claimed, run.id).catch(() => undefined);
    for (const [k, move] of pair.moves.entries()) {
      orders.push({
        ...moveIds(move),
        migration: migrationId(k),
        outcome: lost ? 'unclaimed' : 'failed',
        detail: lost ? `${taken} is booked` : String((error as Error).message ?? error),
      });
    }
    return { orders, written };
  }
  const deadline = now + (run.options.orderDeadlineMs ?? BALANCER_DEFAULTS.orderDeadlineMs);
  for (const [k, move] of pair.moves.entries()) {
    const order: MigrationOrder = {
      id: migrationId(k),
      from: move.from,
      to: move.to,
      phase: 'ORDERED',
      deadline,
      orderedAt: now,
      origin: run.id,
      predicted: { loadOnSource: move.loadOnSource, loadOnTarget: move.loadOnTarget },
    };
    const fence = run.fenceOf(move.vm, move.from);
    try {
      if (fence === undefined) throw new ConditionFailed('orderMigration', 'no fence in the report');
      await orderMigration(clients, move.vm, fence, order);
      orders.push({ ...moveIds(move), migration: order.id, outcome: 'written' });
      written.push(move);
    } catch (error) {
      if (error instanceof ConditionFailed) {
        log.info({ run: run.id, vm: move.vm, from: move.from, to: move.to }, 'order lost: the VM changed');
        orders.push({ ...moveIds(move), migration: order.id, outcome: 'lost', detail: error.message });
      } else {
        // A store error (throttling, network) loses this order only; the run goes on and records it.
        log.warn({ run: run.id, vm: move.vm, err: error }, 'order failed');
        orders.push({
          ...moveIds(move),
          migration: order.id,
          outcome: 'failed',
          detail: String((error as Error).message),
        });
      }
    }
  }
  if (written.length === 0) await releaseAll(clients, claimed, run.id).catch(() => undefined);
  return { orders, written };
}

const moveIds = (move: Move) => ({ vm: move.vm, from: move.from, to: move.to });

/**
 * The loads of the nodes no decided move touches (a move may still be in flight at the next run, so
 * the nodes it touches say nothing about noise), rounded, at most EXPECTED_NODES of them.
 */
export function untouchedLoads(loads: ReadonlyMap<string, number>, moves: readonly Move[]) {
  const touched = new Set(moves.flatMap((m) => [m.from, m.to]));
  const out: Record<string, number> = {};
  let n = 0;
  for (const [id, load] of loads) {
    if (touched.has(id)) continue;
    if (n++ >= EXPECTED_NODES) break;
    out[id] = Number(load.toPrecision(6));
  }
  return out;
}

async function releaseAll(clients: Clients, nodes: readonly string[], run: string): Promise<void> {
  for (const node of nodes) {
    try {
      await releaseClaim(clients, node, run);
    } catch (error) {
      // Someone else's claim replaced ours after it lapsed: nothing of ours to release.
      if (!(error instanceof ConditionFailed)) throw error;
    }
  }
}
