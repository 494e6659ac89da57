// Learning from outcomes. Every exchange records the loads it predicted for its two nodes; a later
// round compares them with what the nodes' reports show once the VMs have moved. Exchanges that did
// not pay off, and VMs that come back to the node they left (ping-pong), earn penalties: a longer
// cooldown for the VM (doubling per strike) and a higher threshold for the pair of nodes. All pure.
import { imbalance } from './stats.ts';
import type { BalancingConfig, Imbalance, Move, PairDecision, RoundDecision, VmInfo } from './types.ts';

/** One exchange as ordered: which VMs went from which node to which, and the loads it expected. */
export interface ExchangeRecord {
  /** `<run id>#<n>`: unique, so an exchange is judged once. */
  id: string;
  at: number;
  from: string;
  to: string;
  vms: string[];
  /** Node loads when the run decided. */
  before: { from: number; to: number };
  /** Node loads the run expected once the VMs had moved. */
  predicted: { from: number; to: number };
}

/** A penalty learned from an outcome; `key` is a VM id (kind `vm`) or `a|b` for a pair of nodes. */
export interface Penalty {
  kind: 'vm' | 'pair';
  key: string;
  reason: 'no-payoff' | 'ping-pong';
  /** How many times this VM or pair has been penalised inside the learning window, this one included. */
  strikes: number;
  /** Epoch ms when the penalty lapses. */
  until: number;
  /** For a VM: it may not move before this time. */
  cooldownUntil?: number;
  /** For a pair: one load must exceed the other by this factor before the pair exchanges again. */
  thresholdFactor?: number;
  detail: string;
}

/** What later reports show about a node: its load now and the VMs it reports, as of `at`. */
export interface NodeObservation {
  at: number;
  load: number;
  vms: ReadonlySet<string>;
}

export interface ExchangeOutcome {
  exchange: string;
  from: string;
  to: string;
  predictedGain: number;
  realisedGain: number;
  paidOff: boolean;
}

export interface LearningOptions {
  /** An exchange pays off when it realises at least this share of its predicted gain. */
  payoffRatio: number;
  /** Penalties never outlast this many ms (the window the run reads its history from). */
  windowMs: number;
  /** Each pair strike raises the pair's threshold factor by this fraction of the configured factor. */
  thresholdStep: number;
  /** A penalised VM's cooldown is max(config cooldown, this) doubled per strike. */
  penaltyBaseMs: number;
}

export const DEFAULT_LEARNING: LearningOptions = {
  payoffRatio: 0.5,
  windowMs: 15 * 60_000,
  thresholdStep: 0.25,
  penaltyBaseMs: 60_000,
};

/** Unordered key for a pair of nodes. */
export const pairKey = (a: string, b: string) => (a < b ? `${a}|${b}` : `${b}|${a}`);

/** The pair's load difference shrinks by this much: the gain an exchange is for. */
const gain = (before: { from: number; to: number }, after: { from: number; to: number }) =>
  Math.abs(before.from - before.to) - Math.abs(after.from - after.to);

/**
 * Judges the exchanges whose VMs have all arrived on their target in reports newer than the order.
 * Exchanges not yet observable are left out (judged by a later round, or forgotten with the window).
 */
export function evaluateExchanges(
  pending: readonly ExchangeRecord[],
  observe: (node: string) => NodeObservation | undefined,
  options: Pick<LearningOptions, 'payoffRatio'> = DEFAULT_LEARNING,
): ExchangeOutcome[] {
  const outcomes: ExchangeOutcome[] = [];
  for (const exchange of pending) {
    const from = observe(exchange.from);
    const to = observe(exchange.to);
    if (!from || !to || from.at <= exchange.at || to.at <= exchange.at) continue;
    if (!exchange.vms.every((vm) => to.vms.has(vm) && !from.vms.has(vm))) continue;
    const predictedGain = gain(exchange.before, exchange.predicted);
    const realisedGain = gain(exchange.before, { from: from.load, to: to.load });
    outcomes.push({
      exchange: exchange.id,
      from: exchange.from,
      to: exchange.to,
      predictedGain,
      realisedGain,
      paidOff: predictedGain <= 0 || realisedGain >= options.payoffRatio * predictedGain,
    });
  }
  return outcomes;
}

/** Moves that send a VM back to a node it left inside the window (the descheduler's ping-pong). */
export function detectPingPong(moves: readonly Move[], recent: readonly ExchangeRecord[]): Move[] {
  const left = new Map<string, Set<string>>();
  for (const exchange of recent) {
    for (const vm of exchange.vms) {
      const nodes = left.get(vm) ?? new Set<string>();
      nodes.add(exchange.from);
      left.set(vm, nodes);
    }
  }
  // With no recent exchange nothing can go back: a lookup per move (thousands a run) finds nothing.
  if (left.size === 0) return [];
  return moves.filter((move) => left.get(move.vm)?.has(move.to) ?? false);
}

/** The strongest live penalty per key: most strikes, latest lapse. */
export function activePenalties(penalties: readonly Penalty[], now: number): Map<string, Penalty> {
  const active = new Map<string, Penalty>();
  for (const penalty of penalties) {
    if (penalty.until <= now) continue;
    const id = `${penalty.kind}:${penalty.key}`;
    const held = active.get(id);
    if (
      !held ||
      penalty.strikes > held.strikes ||
      (penalty.strikes === held.strikes && penalty.until > held.until)
    ) {
      active.set(id, penalty);
    }
  }
  return active;
}

function strikesOf(active: Map<string, Penalty>, kind: Penalty['kind'], key: string): number {
  return active.get(`${kind}:${key}`)?.strikes ?? 0;
}

/**
 * New penalties from this round's evidence: each exchange that did not pay off penalises its pair
 * and its VMs; each ping-pong move penalises its VM and pair. Strikes build on the live penalties.
 */
export function penalise(
  evidence: {
    outcomes: readonly ExchangeOutcome[];
    pingPong: readonly Move[];
    exchanges: readonly ExchangeRecord[];
  },
  previous: readonly Penalty[],
  config: Pick<BalancingConfig, 'cooldownMs' | 'thresholdFactor'>,
  now: number,
  options: LearningOptions = DEFAULT_LEARNING,
): Penalty[] {
  const active = activePenalties(previous, now);
  const out = new Map<string, Penalty>();
  const until = now + options.windowMs;
  const vmsOf = new Map(evidence.exchanges.map((e) => [e.id, e.vms]));

  const penaliseVm = (vm: string, reason: Penalty['reason'], detail: string) => {
    if (out.has(`vm:${vm}`)) return;
    const strikes = strikesOf(active, 'vm', vm) + 1;
    const cooldownUntil = Math.min(
      until,
      now + Math.max(config.cooldownMs, options.penaltyBaseMs) * 2 ** strikes,
    );
    out.set(`vm:${vm}`, { kind: 'vm', key: vm, reason, strikes, until, cooldownUntil, detail });
  };
  const penalisePair = (a: string, b: string, reason: Penalty['reason'], detail: string) => {
    const key = pairKey(a, b);
    if (out.has(`pair:${key}`)) return;
    const strikes = strikesOf(active, 'pair', key) + 1;
    const thresholdFactor = Math.min(10, config.thresholdFactor * (1 + options.thresholdStep * strikes));
    out.set(`pair:${key}`, { kind: 'pair', key, reason, strikes, until, thresholdFactor, detail });
  };

  for (const outcome of evidence.outcomes) {
    if (outcome.paidOff) continue;
    const detail =
      `exchange ${outcome.exchange} realised ${outcome.realisedGain.toFixed(3)} of a predicted ` +
      `${outcome.predictedGain.toFixed(3)} load units`;
    penalisePair(outcome.from, outcome.to, 'no-payoff', detail);
    for (const vm of vmsOf.get(outcome.exchange) ?? []) penaliseVm(vm, 'no-payoff', detail);
  }
  for (const move of evidence.pingPong) {
    const detail = `${move.vm} goes back from ${move.from} to ${move.to}, which it left inside the window`;
    penaliseVm(move.vm, 'ping-pong', detail);
    penalisePair(move.from, move.to, 'ping-pong', detail);
  }
  return [...out.values()];
}

/** VMs under a live VM penalty get its longer cooldown. */
export function applyVmPenalties(vms: readonly VmInfo[], active: Map<string, Penalty>): VmInfo[] {
  return vms.map((vm) => {
    const cooldownUntil = active.get(`vm:${vm.id}`)?.cooldownUntil;
    if (cooldownUntil === undefined || (vm.cooldownUntil ?? 0) >= cooldownUntil) return vm;
    return { ...vm, cooldownUntil };
  });
}

/**
 * Holds back the moves of pairs under a live pair penalty whose loads do not exceed the learned
 * threshold factor; recomputes the moves and the expected imbalance when anything was held back.
 */
export function holdBackPairs(
  decision: RoundDecision,
  active: Map<string, Penalty>,
  loads: ReadonlyMap<string, number>,
  leaveOut: ReadonlySet<string> = new Set(),
): { decision: RoundDecision; heldBack: PairDecision[] } {
  const heldBack: PairDecision[] = [];
  const pairs = decision.pairs.map((pair) => {
    if (pair.moves.length === 0) return pair;
    const factor = active.get(`pair:${pairKey(pair.requester, pair.selected)}`)?.thresholdFactor;
    if (factor === undefined) return pair;
    const hi = Math.max(pair.loads.requester, pair.loads.selected);
    const lo = Math.min(pair.loads.requester, pair.loads.selected);
    if (hi > lo * factor) return pair;
    const held: PairDecision = {
      ...pair,
      moves: [],
      predicted: { ...pair.loads },
      reason: {
        code: 'below-threshold',
        detail: `learned threshold ×${factor.toFixed(2)} for this pair (loads ${hi.toFixed(3)} vs ${lo.toFixed(3)})`,
      },
    };
    heldBack.push(held);
    return held;
  });
  if (heldBack.length === 0) return { decision, heldBack };
  const moves = pairs.flatMap((pair) => pair.moves);
  return {
    decision: { ...decision, pairs, moves, after: expectedImbalance(loads, moves, leaveOut) },
    heldBack,
  };
}

/**
 * Imbalance of `loads` once `moves` are made (each move sheds its source load and adds its target
 * load), leaving out the nodes in `leaveOut` (draining ones) as every imbalance figure does.
 */
export function expectedImbalance(
  loads: ReadonlyMap<string, number>,
  moves: readonly Move[],
  leaveOut: ReadonlySet<string> = new Set(),
): Imbalance {
  const after = new Map(loads);
  for (const move of moves) {
    after.set(move.from, (after.get(move.from) ?? 0) - move.loadOnSource);
    after.set(move.to, (after.get(move.to) ?? 0) + move.loadOnTarget);
  }
  for (const id of leaveOut) after.delete(id);
  return imbalance([...after.values()]);
}

/** The records of this round's written moves, one per exchanging pair. */
export function exchangeRecords(
  run: string,
  at: number,
  written: readonly Move[],
  loads: ReadonlyMap<string, number>,
): ExchangeRecord[] {
  const byPair = new Map<string, Move[]>();
  for (const move of written) {
    const key = `${move.from}\u0000${move.to}`;
    byPair.set(key, [...(byPair.get(key) ?? []), move]);
  }
  return [...byPair.values()].map((moves, n) => {
    const first = moves[0] as Move;
    const before = { from: loads.get(first.from) ?? 0, to: loads.get(first.to) ?? 0 };
    let shed = 0;
    let gained = 0;
    for (const move of moves) {
      shed += move.loadOnSource;
      gained += move.loadOnTarget;
    }
    return {
      id: `${run}#${n}`,
      at,
      from: first.from,
      to: first.to,
      vms: moves.map((m) => m.vm),
      before,
      predicted: { from: before.from - shed, to: before.to + gained },
    };
  });
}

export interface ConvergenceEstimate {
  targetCv: number;
  cv: number;
  /** Factor the CV shrinks by per round (below 1 means converging). */
  ratePerRound: number | null;
  /** Rounds until the CV reaches the target at that rate; 0 when already there, null when not converging. */
  rounds: number | null;
  basis: 'history' | 'this-run' | 'none';
}

/**
 * Rounds to reach `targetCv` at the rate observed: from the oldest earlier round in `history` if any
 * (mean CV per round, so several shards' runs count as one round), else from this run's expectation.
 */
export function estimateConvergence(
  history: readonly { round: number; cv: number }[],
  current: { round: number; cv: number; expectedCv: number },
  targetCv = 0.05,
): ConvergenceEstimate {
  const base = { targetCv, cv: current.cv };
  if (current.cv <= targetCv) return { ...base, ratePerRound: null, rounds: 0, basis: 'none' };
  const perRound = new Map<number, { sum: number; n: number }>();
  for (const point of history) {
    if (point.round >= current.round || !(point.cv > 0)) continue;
    const acc = perRound.get(point.round) ?? { sum: 0, n: 0 };
    perRound.set(point.round, { sum: acc.sum + point.cv, n: acc.n + 1 });
  }
  let rate: number | null = null;
  let basis: ConvergenceEstimate['basis'] = 'none';
  if (perRound.size > 0) {
    const oldest = Math.min(...perRound.keys());
    const acc = perRound.get(oldest) as { sum: number; n: number };
    rate = (current.cv / (acc.sum / acc.n)) ** (1 / (current.round - oldest));
    basis = 'history';
  } else if (current.cv > 0) {
    rate = current.expectedCv / current.cv;
    basis = 'this-run';
  }
  if (rate === null || !(rate < 1) || rate <= 0) {
    return { ...base, ratePerRound: rate, rounds: rate !== null && rate <= 0 ? 1 : null, basis };
  }
  return {
    ...base,
    ratePerRound: rate,
    rounds: Math.ceil(Math.log(targetCv / current.cv) / Math.log(rate)),
    basis,
  };
}
