// One balancer run: read the config and the nodes, learn from earlier runs, decide the round with the
// shared domain, write the orders (claiming each exchanging pair, conditional on the fences read), and
// record what happened. Any number of runs may overlap; the conditional writes alone keep them from
// double-booking a node or a VM.
import { randomBytes } from 'node:crypto';
import { decideRound } from '../../shared/domain/decide.ts';
import {
  activePenalties,
  applyVmPenalties,
  DEFAULT_LEARNING,
  detectPingPong,
  type ExchangeOutcome,
  type ExchangeRecord,
  estimateConvergence,
  evaluateExchanges,
  exchangeRecords,
  expectedImbalance,
  holdBackPairs,
  type LearningOptions,
  type Penalty,
  penalise,
} from '../../shared/domain/learning.ts';
import { plainMaker } from '../../shared/domain/plain.ts';
import { checkShard, roundAt } from '../../shared/domain/shards.ts';
import type {
  BalancingConfig,
  Move,
  NodeInfo,
  PairDecision,
  Reason,
  Rng,
  RoundDecision,
  RoundInput,
  VmInfo,
} from '../../shared/domain/types.ts';
import type { VmTable } from '../../shared/domain/vm-table.ts';
import { eachLimited } from '../../shared/runtime/pool.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { getBalancingConfig } from '../../shared/storage/config-store.ts';
import { meteredClients, newUsage, type Usage } from '../../shared/storage/metered.ts';
import { listShardNodes, type NodeRecord } from '../../shared/storage/nodes.ts';
import {
  EXPECTED_NODES,
  type LearnRecord,
  listLearningSince,
  putLearning,
  putRun,
  type RunOrder,
  type RunRecord,
} from '../../shared/storage/runs.ts';
import { carryOut, EXCHANGE_DEFAULTS, type Logger, runClaims } from './exchange.ts';
import { type RoundView, roundView } from './input.ts';

export { carryOut, type Logger, runClaims } from './exchange.ts';

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
  ...EXCHANGE_DEFAULTS,
  targetCv: 0.05,
  concurrency: 8,
} as const;

/** A run id that sorts by time and cannot collide between runs started at the same moment. */
export function newRunId(now: number, shard: number): string {
  return `run-${now.toString(36).padStart(9, '0')}-s${shard}-${randomBytes(4).toString('hex')}`;
}

/** What a run read: its identity, the config, the node items of its shard and the round's view of them. */
interface Read {
  id: string;
  now: number;
  round: number;
  shard: number;
  shards: number;
  dryRun: boolean;
  config: BalancingConfig;
  records: NodeRecord[];
  view: RoundView;
  /** Wall time of reading the store and of building the domain's input from the items. */
  phases: { readMs: number; inputMs: number };
}

/** What earlier runs taught this one. */
interface Learned {
  options: LearningOptions;
  history: LearnRecord[];
  recent: ExchangeRecord[];
  outcomes: ExchangeOutcome[];
  previous: Penalty[];
  fromOutcomes: Penalty[];
  active: ReturnType<typeof activePenalties>;
  expected: Record<string, number> | undefined;
}

interface Decided {
  /** The round as decideRound returned it (the learning item keeps its untouched loads). */
  round: RoundDecision;
  /** After learned thresholds held pairs back: what the run writes. */
  decision: RoundDecision;
  heldBack: PairDecision[];
  draining: Set<string>;
  decideMs: number;
}

interface Written {
  orders: RunOrder[];
  /** Moves whose order was written (all decided moves in a dry run). */
  planned: Move[];
  exchanges: number;
}

/** Runs one shard of one balancing round and returns its record (stored unless `dryRun`). */
export async function runBalancer(deps: BalancerDeps, options: BalancerOptions = {}): Promise<RunRecord> {
  const usage = newUsage();
  const clients = meteredClients(deps.clients, usage);
  const lap = stopwatch();
  const read = await readRound(clients, deps.clock(), options, lap);
  for (const skip of read.view.skipped)
    deps.log.info({ run: read.id, node: skip.node, reason: skip.reason }, 'node left out');
  const learned = await learn(clients, read, options);
  const learnMs = lap();
  const decided = decide(read, learned, deps.rng);
  lap();
  const written = await writeOrders(clients, deps, read, decided, options);
  const writeMs = lap();
  const record = buildRecord(read, learned, decided, written, usage, options);
  const phases = { ...read.phases, learnMs, decideMs: decided.decideMs, writeMs, recordMs: lap() };
  record.phasesMs = roundPhases(phases);
  record.cpuMs = Math.round(lap.cpuMs() * 100) / 100;
  // Laps in order: read, input, learn, decide, write, record.
  const [readMs, inputMs, learnCpu, decideCpu, writeCpu, recordCpu] = lap.laps;
  record.phasesCpuMs = roundPhases({
    readMs: readMs ?? 0,
    inputMs: inputMs ?? 0,
    learnMs: learnCpu ?? 0,
    decideMs: decideCpu ?? 0,
    writeMs: writeCpu ?? 0,
    recordMs: recordCpu ?? 0,
  });
  await recordRun(deps, clients, { read, learned, decided, written, record, usage });
  logRun(deps.log, record, decided.decideMs);
  return record;
}

type Lap = (() => number) & { cpuMs(): number; laps: number[] };

/**
 * A lap timer: each call returns the wall ms since the previous call (or since it was made) and
 * keeps that lap's CPU ms in `laps`; `cpuMs` is the CPU since it was made.
 */
function stopwatch(): Lap {
  let last = performance.now();
  const start = process.cpuUsage();
  let lastCpu = start;
  const laps: number[] = [];
  const lap = () => {
    const now = performance.now();
    const ms = now - last;
    last = now;
    const used = process.cpuUsage(lastCpu);
    lastCpu = process.cpuUsage();
    laps.push((used.user + used.system) / 1000);
    return ms;
  };
  return Object.assign(lap, {
    laps,
    cpuMs: () => {
      const used = process.cpuUsage(start);
      return (used.user + used.system) / 1000;
    },
  });
}

const roundPhases = (phases: NonNullable<RunRecord['phasesMs']>) =>
  Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v * 100) / 100])) as NonNullable<
    RunRecord['phasesMs']
  >;

/** Read: the config, the round's identity and the node items, turned into the domain's input. */
async function readRound(clients: Clients, now: number, options: BalancerOptions, lap: Lap): Promise<Read> {
  const config = await getBalancingConfig(clients);
  const shards = options.shards ?? config.shards;
  const shard = options.shard ?? 0;
  checkShard(shard, shards);
  const round = options.round ?? roundAt(now, options.roundMs ?? BALANCER_DEFAULTS.roundMs);
  const id = newRunId(now, shard);
  const records = await listShardNodes(clients, { round, shard, shards });
  const readMs = lap();
  const view = roundView(records, {
    now,
    round,
    shard,
    shards,
    reportStaleMs: config.reportStaleMs,
    run: id,
  });
  const phases = { readMs, inputMs: lap() };
  return { id, now, round, shard, shards, dryRun: options.dryRun ?? false, config, records, view, phases };
}

/** Learn: judge earlier exchanges now that their VMs moved, and collect the penalties in force. */
async function learn(clients: Clients, read: Read, options: BalancerOptions): Promise<Learned> {
  const { now, view, config, shard } = read;
  const learnOptions: LearningOptions = { ...DEFAULT_LEARNING, ...options.learning };
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
  return { options: learnOptions, history, recent, outcomes, previous, fromOutcomes, active, expected };
}

/** Decide: the domain's round over the view, with VM penalties applied and learned thresholds heeded. */
function decide(read: Read, learned: Learned, rng: Rng): Decided {
  const { view } = read;
  const input = roundInput(view, learned);
  const start = performance.now();
  const round = decideRound(input, read.config, rng);
  const draining = new Set(view.input.nodes.filter((n) => n.draining).map((n) => n.id));
  // Only a live pair penalty can hold a pair back: without one, the round stands as decided.
  const anyPairPenalty = [...learned.active.values()].some((p) => p.kind === 'pair');
  const held = anyPairPenalty
    ? holdBackPairs(round, learned.active, view.loads, draining)
    : { decision: round, heldBack: [] };
  const decideMs = performance.now() - start;
  return { round, decision: held.decision, heldBack: held.heldBack, draining, decideMs };
}

/**
 * The view's input with the learned VM penalties applied and the loads the shard's last run expected.
 * When the view has the VMs in columns, the round reads those (with the penalties' cooldowns) and the
 * `VmInfo` objects are made only if something asks for them.
 */
function roundInput(view: RoundView, learned: Learned): RoundInput {
  const { input } = view;
  const expected = learned.expected ? { expected: learned.expected } : {};
  if (!input.table) return { ...input, vms: penalisedVms(view, learned.active), ...expected };
  let vms: VmInfo[] | undefined;
  return {
    nodes: input.nodes,
    get vms() {
      vms ??= penalisedVms(view, learned.active);
      return vms;
    },
    round: input.round,
    now: input.now,
    ...(input.inFlight ? { inFlight: input.inFlight } : {}),
    ...(input.vmLoads ? { vmLoads: input.vmLoads } : {}),
    table: penalisedTable(view, input.table, learned.active),
    ...expected,
  };
}

/** The view's columns with the learned VM penalties' cooldowns (the same table when none applies). */
function penalisedTable(view: RoundView, table: VmTable, active: Learned['active']): VmTable {
  let cooldownUntil: Float64Array | undefined;
  const penalised = new Map<number, VmInfo>();
  for (const penalty of active.values()) {
    if (penalty.kind !== 'vm') continue;
    const k = view.vmAt(penalty.key);
    if (k < 0) continue;
    const vm = table.info(k);
    const [after] = applyVmPenalties([vm], active);
    if (after === vm || after === undefined) continue;
    cooldownUntil ??= Float64Array.from(table.cooldownUntil);
    cooldownUntil[k] = after.cooldownUntil ?? Number.NaN;
    penalised.set(k, after);
  }
  if (!cooldownUntil) return table;
  return { ...table, cooldownUntil, info: (v) => penalised.get(v) ?? table.info(v) };
}

/**
 * The round's VMs with the learned VM penalties applied (as applyVmPenalties does), looked up by id
 * in the view rather than per VM: a run with no VM penalty keeps the view's array as it is.
 */
function penalisedVms(view: RoundView, active: Learned['active']): VmInfo[] {
  const { vms } = view.input;
  let out: VmInfo[] | undefined;
  for (const penalty of active.values()) {
    if (penalty.kind !== 'vm') continue;
    const k = view.vmAt(penalty.key);
    if (k < 0) continue;
    const vm = vms[k] as VmInfo;
    const [penalised] = applyVmPenalties([vm], active);
    if (penalised === vm) continue;
    out ??= vms.slice();
    out[k] = penalised as VmInfo;
  }
  return out ?? vms;
}

/** Write: claim the nodes of the exchanging pairs and order their moves (a dry run only numbers them). */
async function writeOrders(
  clients: Clients,
  deps: BalancerDeps,
  read: Read,
  decided: Decided,
  options: BalancerOptions,
): Promise<Written> {
  const { decision } = decided;
  const exchanging = decision.pairs.filter((p) => p.moves.length > 0);
  if (read.dryRun) return dryRunOrders(read, decision, exchanging.length);
  const orders: RunOrder[] = [];
  const planned: Move[] = [];
  let exchanges = 0;
  const numbered: { pair: PairDecision; first: number }[] = [];
  let first = 0;
  for (const pair of exchanging) {
    numbered.push({ pair, first });
    first += pair.moves.length;
  }
  // One booking per node for all the run's exchanges: a giver that spills is in several of them.
  const claims = runClaims(clients, { id: read.id, options }, exchanging);
  const context = { id: read.id, clock: deps.clock, options, fenceOf: read.view.fenceOf, claims };
  const concurrency = options.concurrency ?? BALANCER_DEFAULTS.concurrency;
  await eachLimited(numbered, concurrency, async ({ pair, first }) => {
    const result = await carryOut(clients, deps.log, pair, first, context);
    orders.push(...result.orders);
    planned.push(...result.written);
    if (result.written.length > 0) exchanges++;
  });
  // Exchanges finish in any order; the record lists orders in the order the round decided them.
  const position = new Map(decision.moves.map((m, k) => [m.vm, k]));
  orders.sort((a, b) => (position.get(a.vm) ?? 0) - (position.get(b.vm) ?? 0));
  return { orders, planned, exchanges };
}

function dryRunOrders(read: Read, decision: RoundDecision, exchanges: number): Written {
  // One prefix for every id: each then joins it to its number once, not the run id and '-' again.
  const prefix = `${read.id}-`;
  const orders: RunOrder[] = decision.moves.map((move, n) => {
    const fence = read.view.fenceOf(move.vm, move.from);
    const migration = prefix + n;
    const { vm, from, to } = move;
    // The fence set when made, not added after: adding a field to a made object allocates room for it.
    if (fence === undefined) return { vm, from, to, migration, outcome: 'dry-run' };
    return new DryRunOrderOf(vm, from, to, migration, fence);
  });
  return { orders, planned: decision.moves, exchanges };
}

/** A dry-run order, made by `new` so that V8 does not make it in the old generation (see `plainMaker`). */
const DryRunOrderOf = plainMaker(function (
  this: RunOrder,
  vm: string,
  from: string,
  to: string,
  migration: string,
  fence: number,
) {
  this.vm = vm;
  this.from = from;
  this.to = to;
  this.migration = migration;
  this.outcome = 'dry-run';
  this.fence = fence;
});

/** The penalties this run learned: from judged exchanges and from moves that undo recent ones. */
function newPenalties(read: Read, learned: Learned, planned: readonly Move[]): Penalty[] {
  const pingPong = detectPingPong(planned, learned.recent);
  const fromPingPong = penalise(
    { outcomes: [], pingPong, exchanges: [] },
    [...learned.previous, ...learned.fromOutcomes],
    read.config,
    read.now,
    learned.options,
  );
  return [...learned.fromOutcomes, ...fromPingPong];
}

/** Why each node of the view took no part: left out by the view or the round, or not paired. */
function skippedNodes(read: Read, decision: RoundDecision): RunRecord['skipped'] {
  const { nodes } = read.view.input;
  // Marks by the view's node positions: a Set of 10,000 ids cost more than half a megabyte a run.
  const paired = new Uint8Array(nodes.length);
  const mark = (id: string) => {
    const i = read.view.nodeAt(id);
    if (i >= 0) paired[i] = 1;
  };
  // By index: once a run, over every node, before V8 would optimise away for-of's iterator results.
  const { pairs } = decision;
  for (let k = 0; k < pairs.length; k++) {
    const p = pairs[k] as PairDecision;
    mark(p.requester);
    mark(p.selected);
  }
  for (const s of decision.skipped) mark(s.node);
  const out = [...read.view.skipped, ...decision.skipped];
  for (let i = 0; i < nodes.length; i++) {
    // A node's marks are at its first position: it is looked up only when not marked where it is.
    if (paired[i] === 1) continue;
    const id = (nodes[i] as NodeInfo).id;
    if (paired[read.view.nodeAt(id)] !== 1) out.push({ node: id, reason: 'not paired this round' });
  }
  return out;
}

function reasonCounts(pairs: readonly PairDecision[]): RunRecord['reasons'] {
  const reasons: Partial<Record<Reason['code'], number>> = {};
  for (let k = 0; k < pairs.length; k++) {
    const { code } = (pairs[k] as PairDecision).reason;
    reasons[code] = (reasons[code] ?? 0) + 1;
  }
  return reasons;
}

/** Record: what the run saw, decided, wrote and learned, as one run item. */
function buildRecord(
  read: Read,
  learned: Learned,
  decided: Decided,
  written: Written,
  usage: Usage,
  options: BalancerOptions,
): RunRecord {
  const { decision } = decided;
  const { view } = read;
  const after =
    written.planned.length === decision.moves.length
      ? decision.after
      : expectedImbalance(view.loads, written.planned, decided.draining);
  const penalties = newPenalties(read, learned, written.planned);
  const points = learned.history.map((h) => ({ round: h.round, cv: h.cv }));
  const convergence = estimateConvergence(
    points,
    { round: read.round, cv: decision.before.cv, expectedCv: after.cv },
    options.targetCv ?? BALANCER_DEFAULTS.targetCv,
  );
  const { orders } = written;
  return {
    id: read.id,
    at: read.now,
    shard: read.shard,
    shards: read.shards,
    round: read.round,
    dryRun: read.dryRun,
    config: read.config,
    nodes: { read: read.records.length, inShard: view.inShard, considered: view.input.nodes.length },
    pairs: decision.pairs,
    reasons: reasonCounts(decision.pairs),
    exchanges: written.exchanges,
    orders,
    ordersWritten: orders.filter((o) => o.outcome === 'written').length,
    ordersLost: orders.filter(
      (o) => o.outcome === 'lost' || o.outcome === 'unclaimed' || o.outcome === 'failed',
    ).length,
    skipped: skippedNodes(read, decision),
    before: decision.before,
    after,
    usage,
    learning: {
      evaluated: learned.outcomes,
      penalties,
      active: learned.active.size,
      heldBack: decided.heldBack.map((p) => `${p.requester}|${p.selected}`),
    },
    convergence,
    ...(decision.trigger ? { trigger: decision.trigger } : {}),
    decideMs: decided.decideMs,
    durationMs: 0,
  };
}

/** Stores the learning item and the run record (a dry run stores nothing) and stamps the record's usage. */
async function recordRun(
  deps: BalancerDeps,
  clients: Clients,
  run: { read: Read; learned: Learned; decided: Decided; written: Written; record: RunRecord; usage: Usage },
): Promise<void> {
  const { read, learned, decided, written, record, usage } = run;
  if (read.dryRun) {
    record.durationMs = deps.clock() - read.now;
    record.usage = { ...usage };
    return;
  }
  const learnedItem: LearnRecord = {
    run: read.id,
    at: read.now,
    round: read.round,
    shard: read.shard,
    cv: decided.decision.before.cv,
    exchanges: exchangeRecords(read.id, read.now, written.planned, read.view.loads),
    evaluated: learned.outcomes.map((o) => o.exchange),
    penalties: record.learning.penalties,
    expected: untouchedLoads(read.view.loads, decided.round.moves),
  };
  await putLearning(clients, learnedItem, learned.options.windowMs);
  // The record counts its own write (capacity estimated at 1 unit per KB, as DynamoDB bills it).
  usage.writes += 1;
  usage.writeCapacity += Math.ceil(Buffer.byteLength(JSON.stringify(record)) / 1024);
  record.durationMs = deps.clock() - read.now;
  record.usage = { ...usage };
  const stored = await putRun(deps.clients, record);
  if (stored.omitted) record.omitted = stored.omitted;
}

function logRun(log: Logger, record: RunRecord, decideMs: number): void {
  for (const penalty of record.learning.penalties)
    log.info({ run: record.id, ...penalty }, 'learned a penalty');
  log.info(
    {
      run: record.id,
      shard: record.shard,
      round: record.round,
      dryRun: record.dryRun,
      nodes: record.nodes,
      exchanges: record.exchanges,
      ordersWritten: record.ordersWritten,
      ordersLost: record.ordersLost,
      cvBefore: record.before.cv,
      cvAfter: record.after.cv,
      reads: record.usage.reads,
      writes: record.usage.writes,
      decideMs: Math.round(decideMs * 10) / 10,
    },
    'balancer run',
  );
}

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
