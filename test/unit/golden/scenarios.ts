// Fixed seeded scenarios whose decisions the golden fixture (decisions.json) records: decideRound on
// rounds with drains, pins, cooldowns, anti-affinity, tight memory, drivers, swaps, overrides, limits
// and every pairing policy and selection rule; the run's input building over node items with every
// reason to leave a node out; and whole dry runs of runBalancer (with learned penalties) at the
// bench's size. Speed-ups must leave every digest as it is; a policy change regenerates the fixture
// with `npm run golden` (tsx test/unit/golden/make-fixture.ts) and says so in its commit.
import { createHash } from 'node:crypto';
import { clusterRecords, memoryClients } from '../../../bench/suites/balancer.ts';
import { roundView } from '../../../functions/balancer/input.ts';
import { runBalancer } from '../../../functions/balancer/run.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import type { Penalty } from '../../../shared/domain/learning.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type {
  BalancingConfig,
  NodeInfo,
  RoundDecision,
  RoundInput,
  VmInfo,
} from '../../../shared/domain/types.ts';

type Rng = ReturnType<typeof createRng>;
type Weights = NodeInfo['weights'];

import type { Clients } from '../../../shared/storage/clients.ts';
import type { NodeRecord, ReportedVm } from '../../../shared/storage/nodes.ts';
import type { LearnRecord, RunRecord } from '../../../shared/storage/runs.ts';

const NOW = 1_700_000_000_000;

/** What shapes a generated round; every share is a probability per node or per VM. */
interface Shape {
  nodes: number;
  /** VMs per node, drawn uniformly from [min, max]. */
  vms: [number, number];
  /** Share of nodes three times as loaded as the rest. */
  heavy?: number;
  draining?: number;
  override?: number;
  inFlight?: number;
  /** Share of nodes offering qemu, and of VMs needing it. */
  qemuNodes?: number;
  qemuVms?: number;
  pinned?: number;
  busy?: number;
  cooling?: number;
  /** Anti-affinity: share of VMs in a group, and how many groups. */
  grouped?: number;
  groups?: number;
  /** Node memory in pages (VMs take 16–80). */
  memPages?: number;
  /** Mixed weights, with paging and network factors. */
  mixedWeights?: boolean;
  /** VM loads drawn from these values (CPU factor) instead of a continuous range. */
  lumps?: number[];
  targets?: number;
  /** Expected loads of the previous round: the actual loads times (1 ± this noise). */
  expectedNoise?: number;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)] as T;
const chance = (rng: Rng, p = 0) => rng.next() < p;

const WEIGHTS: Weights[] = [
  { cpu: 1, io: 0.2, mem: 0.05 },
  { cpu: 0.5, io: 0.2, mem: 0.05, paging: 0.1 },
  { cpu: 2, io: 0.1, mem: 0.1, net: 0.05 },
];

/** A round generated from a seed: the same seed and shape give the same round on every platform. */
export function generatedRound(seed: number, shape: Shape): RoundInput {
  const rng = createRng(seed);
  const nodes: NodeInfo[] = [];
  const vms: VmInfo[] = [];
  const inFlight: Record<string, number> = {};
  for (let n = 0; n < shape.nodes; n++) {
    const id = `n${String(n).padStart(4, '0')}`;
    const node: NodeInfo = {
      id,
      weights: shape.mixedWeights ? pick(rng, WEIGHTS) : (WEIGHTS[0] as Weights),
      capacity: pick(rng, [2, 4, 8]),
      memCapacityPages: shape.memPages ?? 1 << 20,
      draining: chance(rng, shape.draining),
      drivers: chance(rng, shape.qemuNodes) ? ['wasm', 'qemu'] : ['wasm'],
    };
    if (chance(rng, shape.override)) node.loadOverride = Math.round(rng.next() * 60) / 10;
    if (chance(rng, shape.inFlight)) inFlight[id] = 1 + Math.floor(rng.next() * 8);
    nodes.push(node);
    const heavy = chance(rng, shape.heavy ?? 0.5);
    const count = shape.vms[0] + Math.floor(rng.next() * (shape.vms[1] - shape.vms[0] + 1));
    for (let v = 0; v < count; v++) {
      const cpu = shape.lumps ? pick(rng, shape.lumps) : (heavy ? 0.3 : 0.1) * (0.5 + rng.next());
      const vm: VmInfo = {
        id: `${id}-v${v}`,
        node: id,
        factors: {
          cpu,
          io: rng.next() * 0.2,
          mem: 0.25,
          ...(shape.mixedWeights ? { paging: rng.next(), net: rng.next() * 2 } : {}),
        },
        memPages: 16 + 16 * Math.floor(rng.next() * 5),
        pinned: chance(rng, shape.pinned),
        busy: chance(rng, shape.busy),
      };
      if (chance(rng, shape.cooling)) vm.cooldownUntil = NOW + (rng.next() < 0.5 ? 1000 : -1000);
      if (chance(rng, shape.grouped)) vm.group = `g${Math.floor(rng.next() * (shape.groups ?? 4))}`;
      if (chance(rng, shape.qemuVms)) vm.driver = 'qemu';
      if (chance(rng, shape.targets)) vm.targetLoad = rng.next() * 0.5;
      vms.push(vm);
    }
  }
  const input: RoundInput = { nodes, vms, round: seed, now: NOW, inFlight };
  if (shape.expectedNoise !== undefined) {
    const noise = shape.expectedNoise;
    const expected: Record<string, number> = {};
    const round = decideRound(input, { ...DEFAULT_BALANCING_CONFIG, trigger: 'difference' }, createRng(0));
    for (const [id, load] of Object.entries(round.expected ?? {}))
      expected[id] = load * (1 + noise * (2 * rng.next() - 1));
    input.expected = expected;
  }
  return input;
}

interface RoundScenario {
  name: string;
  seed: number;
  shape: Shape;
  config: Partial<BalancingConfig>;
}

const UNLIMITED = { maxMigrationsPerCluster: 1_000_000 };

/** The decideRound scenarios: each feature and each policy at least once. */
export const ROUND_SCENARIOS: RoundScenario[] = [
  { name: 'default skewed', seed: 1, shape: { nodes: 400, vms: [5, 15] }, config: UNLIMITED },
  {
    name: 'default, cluster limit',
    seed: 2,
    shape: { nodes: 200, vms: [5, 15] },
    config: { maxMigrationsPerCluster: 100 },
  },
  {
    name: 'drains, pins, busy, cooldowns, in flight',
    seed: 3,
    shape: {
      nodes: 150,
      vms: [3, 12],
      draining: 0.08,
      pinned: 0.1,
      busy: 0.05,
      cooling: 0.15,
      inFlight: 0.1,
    },
    config: UNLIMITED,
  },
  {
    name: 'anti-affinity and tight memory',
    seed: 4,
    shape: { nodes: 120, vms: [4, 10], grouped: 0.4, groups: 6, memPages: 600, draining: 0.05 },
    config: UNLIMITED,
  },
  {
    name: 'drivers',
    seed: 5,
    shape: { nodes: 120, vms: [4, 10], qemuNodes: 0.3, qemuVms: 0.25, draining: 0.05 },
    config: UNLIMITED,
  },
  {
    name: 'swaps of lumpy VMs',
    seed: 6,
    shape: { nodes: 80, vms: [2, 2], lumps: [0.3, 0.4] },
    config: { ...UNLIMITED, trigger: 'difference' },
  },
  {
    name: 'swaps, pair aim',
    seed: 7,
    shape: { nodes: 100, vms: [2, 3], lumps: [0.3, 0.4, 0.8] },
    config: { ...UNLIMITED, trigger: 'difference', aim: 'pair', thresholdFactor: 1, margin: 0 },
  },
  {
    name: 'mixed weights and overrides',
    seed: 8,
    shape: { nodes: 150, vms: [3, 12], mixedWeights: true, override: 0.1, targets: 0.5 },
    config: UNLIMITED,
  },
  {
    name: 'auto trigger under noise',
    seed: 9,
    shape: { nodes: 150, vms: [5, 10], heavy: 0.1, expectedNoise: 0.5 },
    config: UNLIMITED,
  },
  {
    name: 'auto trigger, structural',
    seed: 10,
    shape: { nodes: 150, vms: [5, 10], expectedNoise: 0.01 },
    config: UNLIMITED,
  },
  {
    name: 'random pairing, half-diff, pair aim',
    seed: 11,
    shape: { nodes: 150, vms: [3, 12], draining: 0.05, pinned: 0.1 },
    config: { ...UNLIMITED, pairing: 'random', selection: 'half-diff', aim: 'pair', trigger: 'difference' },
  },
  {
    name: 'round-robin, target rule, single VM',
    seed: 12,
    shape: { nodes: 101, vms: [3, 12], targets: 0.7 },
    config: { pairing: 'round-robin', selection: 'target', multiVm: false, trigger: 'difference' },
  },
  {
    name: 'sender, largest, push-only',
    seed: 13,
    shape: { nodes: 150, vms: [3, 12] },
    config: {
      ...UNLIMITED,
      pairing: 'sender',
      selection: 'largest',
      direction: 'push-only',
      highThreshold: 0.2,
    },
  },
  {
    name: 'receiver without random partners, headroom',
    seed: 14,
    shape: { nodes: 150, vms: [3, 12] },
    config: { ...UNLIMITED, pairing: 'receiver', withRandom: false, lowThreshold: 0.3, trigger: 'headroom' },
  },
  {
    name: 'symmetric, headroom, per-node limit',
    seed: 15,
    shape: { nodes: 150, vms: [3, 12], inFlight: 0.2, draining: 0.05 },
    config: {
      ...UNLIMITED,
      pairing: 'symmetric',
      trigger: 'headroom',
      highThreshold: 0.25,
      maxMigrationsPerNode: 3,
    },
  },
  {
    name: 'everything at once',
    seed: 16,
    shape: {
      nodes: 300,
      vms: [0, 14],
      draining: 0.05,
      override: 0.05,
      inFlight: 0.05,
      qemuNodes: 0.5,
      qemuVms: 0.1,
      pinned: 0.05,
      busy: 0.05,
      cooling: 0.1,
      grouped: 0.2,
      groups: 10,
      memPages: 1200,
      mixedWeights: true,
      targets: 0.3,
    },
    config: UNLIMITED,
  },
];

/** A stable digest of any JSON value. */
export function digest(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 24);
}

/** The compact record of a round: counts to read in a diff, a digest of every detail to compare. */
export interface GoldenEntry {
  name: string;
  pairs: number;
  moves: number;
  reasons: Record<string, number>;
  /** How many exchanges swapped, and how many drained a node. */
  swaps: number;
  drains: number;
  /** sha256 (24 hex) of the whole decision: pairs, moves, reasons, loads, imbalance, expected, trigger. */
  digest: string;
}

function entryOf(
  name: string,
  decision: { pairs: RoundDecision['pairs']; moves: readonly unknown[] },
  whole: unknown,
): GoldenEntry {
  const reasons: Record<string, number> = {};
  for (const p of decision.pairs) reasons[p.reason.code] = (reasons[p.reason.code] ?? 0) + 1;
  return {
    name,
    pairs: decision.pairs.length,
    moves: decision.moves.length,
    reasons,
    swaps: decision.pairs.filter((p) => p.reason.detail.includes('swapped')).length,
    drains: decision.pairs.filter((p) => p.reason.detail.includes('is draining: gave')).length,
    digest: digest(whole),
  };
}

export function roundEntries(): GoldenEntry[] {
  return ROUND_SCENARIOS.map((s) => {
    const input = generatedRound(s.seed, s.shape);
    const config = { ...DEFAULT_BALANCING_CONFIG, ...s.config };
    const decision = decideRound(input, config, createRng(s.seed * 7919));
    return entryOf(s.name, decision, decision);
  });
}

/**
 * Node items for the run: the bench's skewed cluster with hints, labels, overrides, drains, VMs
 * reported twice (a move under way), and nodes left out for every reason (lease, report, claim).
 */
export function variedRecords(nodes: number, seed: number): NodeRecord[] {
  const records = clusterRecords(nodes, 6, seed);
  const rng = createRng(seed + 1);
  records.forEach((r, n) => {
    const report = r.report as NonNullable<NodeRecord['report']>;
    const roll = rng.next();
    if (roll < 0.02) r.leaseUntil = NOW - 1;
    else if (roll < 0.04) report.at = NOW - 60_000;
    else if (roll < 0.06) r.claim = { run: 'another-run', until: NOW + 5000 };
    else if (roll < 0.07) r.claim = { run: 'another-run', until: NOW - 5000 };
    else if (roll < 0.08) delete r.report;
    if (rng.next() < 0.1) r.hints = { cpu: 1.5 };
    if (rng.next() < 0.2) r.labels = { qemu: 'kvm' };
    if (rng.next() < 0.05) r.draining = true;
    if (rng.next() < 0.03) r.loadOverride = rng.next() * 3;
    for (const [id, vm] of Object.entries(report.vms)) {
      const roll2 = rng.next();
      const entry: ReportedVm = { ...vm, fence: 1 + Math.floor(rng.next() * 5) };
      if (roll2 < 0.05) entry.pinned = true;
      else if (roll2 < 0.08) entry.busy = true;
      else if (roll2 < 0.12) entry.group = `g${Math.floor(rng.next() * 5)}`;
      else if (roll2 < 0.14) entry.driver = 'qemu';
      else if (roll2 < 0.17) entry.cooldownUntil = NOW + 30_000;
      else if (roll2 < 0.2) entry.targetLoad = rng.next();
      report.vms[id] = entry;
    }
    // Every 50th node also reports the first VM of the node before it: a move under way.
    const previous = records[n - 1]?.report;
    if (n % 50 === 49 && previous) {
      const [id, vm] = Object.entries(previous.vms)[0] as [string, ReportedVm];
      report.vms[id] = { ...vm };
    }
  });
  return records;
}

export function viewEntries(): { name: string; digest: string }[] {
  const records = variedRecords(600, 21);
  return [0, 1, 2].map((shard) => {
    const view = roundView(records, {
      now: NOW,
      round: 9,
      shard,
      shards: 3,
      reportStaleMs: 30_000,
      run: 'golden-run',
    });
    const fences = view.input.vms.slice(0, 500).map((vm) => view.fenceOf(vm.id, vm.node));
    const observed = view.input.nodes.slice(0, 50).map((n) => {
      const o = view.observe(n.id);
      return o && { at: o.at, load: o.load, vms: [...o.vms] };
    });
    // The VMs' loads handed to the round are a cache of what the round would compute (left out).
    const { vmLoads, ...input } = view.input;
    const whole = {
      input,
      skipped: view.skipped,
      inShard: view.inShard,
      loads: [...view.loads],
      fences,
      observed,
    };
    return { name: `view of shard ${shard}/3`, digest: digest(whole) };
  });
}

/** Clients serving the config, the node items and a learning history from memory. */
function clientsWith(records: NodeRecord[], config: BalancingConfig, history: LearnRecord[]): Clients {
  const base = memoryClients(records, config);
  const send = async (command: { input: Record<string, unknown> }) => {
    const values = command.input.ExpressionAttributeValues as Record<string, unknown> | undefined;
    if (values?.[':k'] === 'LEARN') return { Items: history, Count: history.length };
    return base.doc.send(command as never);
  };
  return { ...base, doc: { send } } as unknown as Clients;
}

/** Penalties on some VMs and pairs of the cluster, as earlier runs would have left them. */
function learnedHistory(records: NodeRecord[]): LearnRecord[] {
  const penalties: Penalty[] = [];
  for (let n = 0; n + 1 < records.length; n += 7) {
    const a = records[n] as NodeRecord;
    const b = records[n + 1] as NodeRecord;
    penalties.push({
      kind: 'pair',
      key: a.id < b.id ? `${a.id}|${b.id}` : `${b.id}|${a.id}`,
      reason: 'no-payoff',
      strikes: 1 + (n % 3),
      until: NOW + 60_000,
      thresholdFactor: 1.5 + (n % 5),
      detail: 'golden',
    });
    const vm = Object.keys(a.report?.vms ?? {})[0];
    if (vm)
      penalties.push({
        kind: 'vm',
        key: vm,
        reason: 'ping-pong',
        strikes: 1,
        until: NOW + 60_000,
        cooldownUntil: NOW + 30_000,
        detail: 'golden',
      });
  }
  const expected: Record<string, number> = {};
  for (const r of records.slice(0, 300)) expected[r.id] = (r.report?.total ?? 0) * 1.01;
  return [
    {
      run: 'run-earlier',
      at: NOW - 60_000,
      round: 4,
      shard: 0,
      cv: 0.5,
      exchanges: [],
      evaluated: [],
      penalties,
      expected,
    },
  ];
}

/** A run record without what differs between runs of the same decisions (its id, its timings). */
function comparable(record: RunRecord): unknown {
  const { id, decideMs, durationMs, phasesMs, phasesCpuMs, cpuMs, ...rest } = record;
  return JSON.parse(JSON.stringify(rest).replaceAll(id, 'RUN'));
}

async function dryRun(records: NodeRecord[], config: BalancingConfig, history: LearnRecord[], round: number) {
  const record = await runBalancer(
    {
      clients: clientsWith(records, config, history),
      clock: () => NOW,
      rng: createRng(round),
      log: { info() {}, warn() {} },
    },
    { round, dryRun: true },
  );
  return entryOf(`run of round ${round}`, { pairs: record.pairs, moves: record.orders }, comparable(record));
}

export async function runEntries(): Promise<GoldenEntry[]> {
  const config = { ...DEFAULT_BALANCING_CONFIG, ...UNLIMITED };
  const varied = variedRecords(1500, 31);
  const bench = clusterRecords(10_000, 10, 7);
  const out = [
    { ...(await dryRun(varied, config, learnedHistory(varied), 3)), name: 'varied run with learning' },
    { ...(await dryRun(varied, DEFAULT_BALANCING_CONFIG, [], 4)), name: 'varied run, cluster limit' },
    { ...(await dryRun(bench, config, [], 0)), name: 'bench run 10,000 x 100,000' },
  ];
  return out;
}

export interface Golden {
  rounds: GoldenEntry[];
  views: { name: string; digest: string }[];
  runs: GoldenEntry[];
}

export async function goldenNow(): Promise<Golden> {
  return { rounds: roundEntries(), views: viewEntries(), runs: await runEntries() };
}
