// One pair's exchange (Figs. 2 and 3 blocks 58–64), in named steps: judge the pair (who gives, or why
// nobody does), open the exchange (how much to shed, which VMs may go), step it one move at a time,
// and close it (a swap when no single move helped, and the reason).
import { exceeds } from './exceeds.ts';
import {
  applyMove,
  budgetOf,
  candidatesFor,
  cannotTake,
  describe,
  endAt,
  exchangeLists,
  fmt,
  hasBudget,
  loadOf,
  loadsLargestFirst,
  nodeOf,
  type ResultBuilder,
  type RoundState,
  recycle,
  resultFor,
  takerOf,
  text,
} from './round-state.ts';
import { type Candidate, type ExchangeState, selectSwap, selectVm } from './selection.ts';
import { OVERLOAD_FACTOR } from './trigger.ts';
import type { Move, NodeInfo, PairDecision, Weights } from './types.ts';

/** How far past the mean (as a fraction of the giver's excess) a mean-aimed exchange may fill the taker. */
export const MEAN_OVERSHOOT = 0.25;

/** The tolerance band, in units of the exceeds test's resolution (see `toleranceOf`). */
export const TOLERANCE_BAND = 2;

/** A giver with fewer movable VMs than this aims exactly: its load moves in coarse steps. */
export const TOLERANCE_MIN_VMS = 8;

/** An exchange under way: the giver sheds VMs to the taker one move per step. */
export interface Exchange {
  giver: NodeInfo;
  taker: NodeInfo;
  /** Whether the less loaded side pulled (Fig. 3 blocks 80/82). */
  pulled: boolean;
  /** Both loads as the exchange opened. */
  g: number;
  t: number;
  result: ResultBuilder;
  /** Every VM of the giver that could go as the exchange opened (a swap chooses among them). */
  candidates: Candidate[];
  /** Those that still fit the taker. */
  pool: Candidate[];
  pair: ExchangeState;
  moves: Move[];
  maxMoves: number;
  stoppedByLimit: boolean;
}

/** Who gives in the pair, or the decision that nobody does (exceeds test, direction, trigger). */
function judgePair(
  state: RoundState,
  requester: string,
  selected: string,
  result: ResultBuilder,
): { giver: NodeInfo; taker: NodeInfo; pulled: boolean } | PairDecision {
  const { config } = state;
  const r = loadOf(state, requester);
  const s = loadOf(state, selected);
  const rNode = nodeOf(state, requester);
  const sNode = nodeOf(state, selected);
  let sides: { giver: NodeInfo; taker: NodeInfo; pulled: boolean };
  if (exceeds(r, s, config)) {
    sides = { giver: rNode, taker: sNode, pulled: false };
  } else if (exceeds(s, r, config)) {
    if (config.direction === 'push-only') {
      return result({
        code: 'push-only',
        detail: `${selected} (${fmt(s)}) exceeds ${requester} (${fmt(r)}) but only the requester may give`,
      });
    }
    sides = { giver: sNode, taker: rNode, pulled: true };
  } else if (r === s) {
    return result({
      code: 'balanced',
      detail: `${requester} and ${selected} carry the same load (${fmt(r)})`,
    });
  } else {
    return result({
      code: 'below-threshold',
      detail: `${fmt(r)} vs ${fmt(s)}: the difference is within factor ${config.thresholdFactor} / margin ${config.margin}`,
    });
  }
  const { giver } = sides;
  const g = loadOf(state, giver.id);
  if (state.trigger.trigger === 'headroom' && g <= config.highThreshold * giver.capacity) {
    return result({
      code: 'below-threshold',
      detail: `${giver.id} (${fmt(g)}) has headroom below ${config.highThreshold} of its capacity ${fmt(giver.capacity)}`,
    });
  }
  if (state.trigger.trigger === 'overload' && g <= OVERLOAD_FACTOR * giver.capacity) {
    return result({
      code: 'below-threshold',
      detail: `${giver.id} (${fmt(g)}) is not overloaded (capacity ${fmt(giver.capacity)}) and the loads are noisy (spread ${fmt(state.trigger.spread)}, noise ${fmt(state.trigger.noise ?? 0)})`,
    });
  }
  return sides;
}

/** Open the pair's exchange, or decide at once why it makes none (see `judgePair`, limits, constraints). */
export function openExchange(
  state: RoundState,
  requester: string,
  selected: string,
): Exchange | PairDecision {
  const result = resultFor(state, requester, selected);
  const sides = judgePair(state, requester, selected, result);
  if ('reason' in sides) return sides;
  const { giver, taker, pulled } = sides;
  const g = loadOf(state, giver.id);
  const t = loadOf(state, taker.id);
  const transfer = desiredTransfer(state, giver, taker, g, t);
  if (transfer <= 0) {
    return result({
      code: 'balanced',
      detail: `${giver.id} (${fmt(g)}) and ${taker.id} (${fmt(t)}) need nothing to reach the aim (mean ${fmt(state.mean)})`,
    });
  }
  if (state.clusterBudget <= 0) return result(clusterLimit(state));
  // The round's own lists, filled again by the next exchange once this one's are recycled.
  const lists = exchangeLists(state);
  const { candidates, excluded, total } = candidatesFor(state, giver, taker, lists.candidates);
  // No exchange follows: the lists go back at once.
  if (candidates.length === 0) recycle(state, candidates);
  if (total === 0) return result({ code: 'no-candidate', detail: `${giver.id} has no VMs to give` });
  if (candidates.length === 0) {
    return result({
      code: 'constraint',
      detail: `no VM of ${giver.id} may move to ${taker.id}: ${describe(excluded)}`,
    });
  }
  const giverBound = transfer >= g - state.mean - 1e-12;
  const tolerance = candidates.length >= TOLERANCE_MIN_VMS ? sideTolerance(state, giverBound) : 0;
  const pair = exchangeState(g, t, g - t - 2 * transfer, tolerance);
  if (tolerance > 0 && !giverBound) fitTaker(state, pair, candidates, tolerance);
  return {
    giver,
    taker,
    pulled,
    g,
    t,
    result,
    candidates,
    pool: copyInto(lists.pool, candidates),
    pair,
    moves: lists.moves,
    maxMoves: state.config.multiVm ? state.config.maxMovesPerExchange : 1,
    stoppedByLimit: false,
  };
}

/** One move of the exchange, if one improves the pair; false once the exchange is over. */
export function stepExchange(state: RoundState, ex: Exchange): boolean {
  const { config } = state;
  if (ex.moves.length >= ex.maxMoves) return false;
  if (!hasBudget(state, ex.giver.id, ex.taker.id)) {
    ex.stoppedByLimit = true;
    return false;
  }
  let pick = selectVm(ex.pool, ex.pair, config.selection);
  let passing = false;
  if (!pick && ex.moves.length === 0 && (config.aim ?? 'pair') === 'mean' && ex.g > state.mean) {
    // Every VM is too large to stop the taker at the mean (or what it lacks is within the
    // tolerance): let one VM pass the mean, so that a giver above the mean is never stuck.
    const giverSide = Math.min((ex.g - ex.t) / 2, ex.g - state.mean);
    ex.pair.aimGap = ex.g - ex.t - 2 * giverSide;
    pick = selectVm(ex.pool, ex.pair, config.selection);
    passing = true;
  }
  if (!pick) return false;
  ex.moves.push(applyMove(state, pick, ex.giver, ex.taker));
  ex.pair.giverLoad -= pick.loadOnSource;
  ex.pair.takerLoad += pick.loadOnTarget;
  // One VM, no more: aiming on at the pair's midpoint would fill the taker past the mean with load
  // that must leave it again (or stay on it as imbalance). The giver meets other partners instead.
  if (passing) return false;
  const takerState = takerOf(state, ex.taker.id);
  // The taker's memory and groups changed: keep the candidates that still fit (in place).
  let kept = 0;
  for (let k = 0; k < ex.pool.length; k++) {
    const c = ex.pool[k] as Candidate;
    if (c !== pick && cannotTake(c, takerState) === undefined) ex.pool[kept++] = c;
  }
  ex.pool.length = kept;
  // What the giver sheds anyway shrinks with each VM it gives (see `fitTaker`): by that VM when it was
  // one of them (the largest that fit in what is left are the others), else counted again.
  const { shedCount, shedAnyway } = ex.pair;
  if (shedCount !== undefined && shedCount > 0 && pick.loadOnSource >= (shedAnyway as number)) {
    ex.pair.shedCount = shedCount - 1;
  } else if (shedCount !== undefined) fitTaker(state, ex.pair, ex.pool, ex.pair.tolerance ?? 0);
  return exceeds(ex.pair.giverLoad, ex.pair.takerLoad, config);
}

/** The exchange's decision once no step moves any more: its moves, else a swap, else why not. */
export function closeExchange(state: RoundState, ex: Exchange): PairDecision {
  if (ex.moves.length === 0 && !ex.stoppedByLimit) oneBeforeSwap(state, ex);
  const { giver, taker, g, t, result } = ex;
  if (ex.moves.length > 0) {
    let moved = 0;
    for (let k = 0; k < ex.moves.length; k++) moved += (ex.moves[k] as Move).loadOnSource;
    return result(
      {
        code: 'moved',
        detail: text`${giver.id} ${ex.pulled ? 'gave (pulled by the less loaded side)' : 'gave'} ${ex.moves.length} VM(s), load ${fmt(moved)}, to ${taker.id}: ${fmt(g)}/${fmt(t)} → ${fmt(ex.pair.giverLoad)}/${fmt(ex.pair.takerLoad)}`,
      },
      // A copy of its own length: the exchange's list is the round's, and one grown by push is
      // mostly empty room, kept as long as the decision.
      ex.moves.slice(),
    );
  }
  if (ex.stoppedByLimit) {
    if (state.clusterBudget <= 0) return result(clusterLimit(state));
    return result({ code: 'limit', detail: `migration limit reached for ${giver.id} or ${taker.id}` });
  }
  const swap = state.config.multiVm && mayTrade(state, ex) ? trySwap(state, ex) : undefined;
  if (swap) {
    const list = (ms: Move[]) => ms.map((m) => `${m.vm} (${fmt(m.loadOnSource)})`).join(' and ');
    const gave = swap.filter((m) => m.from === giver.id);
    const took = swap.filter((m) => m.from === taker.id);
    return result(
      {
        code: 'moved',
        detail: `no single VM helps, so ${giver.id} and ${taker.id} swapped ${list(gave)} for ${list(took)}: ${fmt(g)}/${fmt(t)} → ${fmt(loadOf(state, giver.id))}/${fmt(loadOf(state, taker.id))}`,
      },
      swap,
    );
  }
  return result({
    code: 'no-gain',
    detail: `none of ${ex.candidates.length} movable VM(s) of ${giver.id} brings ${fmt(g)} vs ${fmt(t)} closer without raising the pair's maximum`,
  });
}

/** Whether the pair may trade VMs: its giver in the upper part of the excess (`swapFloor`), its taker below the mean. */
function mayTrade(state: RoundState, ex: Exchange): boolean {
  return ex.g >= state.swapFloor && ex.t < state.mean;
}

/**
 * Where a swap would be tried, one VM first if one improves the pair under the law a swap is judged by
 * (`improves`, nearest the aim, the tolerance aside) and moves more than the `margin`: a swap is two
 * or three migrations for what one may do. The tolerance stops an exchange short of the aim; it does
 * not make two migrations better than one.
 */
function oneBeforeSwap(state: RoundState, ex: Exchange): void {
  if (!state.config.multiVm || !mayTrade(state, ex) || !hasBudget(state, ex.giver.id, ex.taker.id)) return;
  const { giverLoad, takerLoad, aimGap } = ex.pair;
  const one = selectVm(
    ex.pool,
    exchangeState(giverLoad, takerLoad, aimGap, undefined),
    state.config.selection,
  );
  const { margin } = state.config;
  if (!one || one.loadOnSource <= margin || one.loadOnTarget <= margin) return;
  ex.moves.push(applyMove(state, one, ex.giver, ex.taker));
  ex.pair.giverLoad -= one.loadOnSource;
  ex.pair.takerLoad += one.loadOnTarget;
}

function clusterLimit(state: RoundState) {
  return {
    code: 'limit' as const,
    detail: `cluster limit of ${state.config.maxMigrationsPerCluster} migrations reached`,
  };
}

/**
 * When no single VM improves the pair: the best swap of giver VMs for taker VMs (one for one, else two
 * for one either way), applied (giver's moves first), or undefined. Each VM is one migration of both
 * nodes' budgets.
 */
function trySwap(state: RoundState, ex: Exchange): Move[] | undefined {
  const { giver, taker } = ex;
  const room = Math.min(state.clusterBudget, budgetOf(state, giver.id), budgetOf(state, taker.id));
  if (room < 2) return;
  // Only between nodes of the same weights: across different weights a swap trades on the weights.
  if (!sameWeights(giver.weights, taker.weights)) return;
  const back = candidatesFor(state, taker, giver).candidates;
  if (back.length === 0) return;
  const swap = selectSwap(ex.candidates, back, ex.pair, room, state.config.margin);
  if (!swap) return;
  const out = swap.give.map((c) => applyMove(state, c, giver, taker));
  const into = swap.take.map((c) => applyMove(state, c, taker, giver));
  return [...out, ...into];
}

/**
 * An exchange's state with every field present, in one order, `fitTaker`'s undefined until it fills
 * them: fields added later gave the states several shapes, and V8 threw away the exchange steps'
 * optimised code each time it met a new one.
 */
function exchangeState(
  giverLoad: number,
  takerLoad: number,
  aimGap: number,
  tolerance: number | undefined,
): ExchangeState {
  return {
    giverLoad,
    takerLoad,
    aimGap,
    tolerance,
    rest: undefined,
    shedAnyway: undefined,
    shedCount: undefined,
  };
}

/** `from`'s items in `to`, in place of what `to` held. */
function copyInto<T>(to: T[], from: readonly T[]): T[] {
  for (let k = 0; k < from.length; k++) to[k] = from[k] as T;
  endAt(to, from.length);
  return to;
}

/** How much load the giver should shed, in its own units: half the gap, capped by the aim and headroom. */
function desiredTransfer(state: RoundState, giver: NodeInfo, taker: NodeInfo, g: number, t: number): number {
  const { config, mean } = state;
  let transfer = (g - t) / 2;
  if ((config.aim ?? 'pair') === 'mean') {
    // A giver far above the mean may push its partner past the mean by a fraction of its own excess:
    // it meets one partner per round, and partners near the mean would otherwise take it slowly.
    transfer = Math.min(transfer, g - mean, Math.max(mean - t, (g - mean) * MEAN_OVERSHOOT));
  }
  if (state.trigger.trigger === 'headroom') {
    transfer = Math.min(transfer, config.highThreshold * taker.capacity - t);
  }
  if (state.trigger.trigger === 'overload') {
    // Shed just the overload: under noise, load moved below capacity is load moved for nothing.
    transfer = Math.min(transfer, taker.capacity - t, g - giver.capacity);
  }
  return transfer;
}

/**
 * How far from the mean an exchange may leave either node (load units): TOLERANCE_BAND times the
 * exceeds test's own resolution ((thresholdFactor − 1) × mean), but never more than twice the shard's
 * current standard deviation of loads, so the aim sharpens as the shard evens out. Only under `difference`
 * with the mean aim; 0 otherwise (the exchange aims exactly, as before).
 */
export function toleranceOf(state: RoundState): number {
  if ((state.config.aim ?? 'pair') !== 'mean' || state.trigger.trigger !== 'difference') return 0;
  const band = TOLERANCE_BAND * (state.config.thresholdFactor - 1) * state.mean;
  return Math.max(0, Math.min(band, 2 * state.trigger.spread * state.mean));
}

/** How many counted nodes were above and below the mean as the round started (see `sideTolerance`). */
const sidesByRound = new WeakMap<RoundState, { above: number; below: number }>();

/** Count the nodes on each side of the mean; `decideRound` calls it before the first move. */
export function countSides(state: RoundState): void {
  const sides = { above: 0, below: 0 };
  const { nodes } = state.input;
  for (let i = 0; i < nodes.length; i++) {
    if ((nodes[i] as NodeInfo).draining) continue;
    const load = state.loads[i] as number;
    if (load > state.mean) sides.above++;
    else if (load < state.mean) sides.below++;
  }
  sidesByRound.set(state, sides);
}

/**
 * How far from the mean a giver (`giverSide`) or a taker may stop: the tolerance for the side with
 * more nodes, and further out for the side with fewer. Load that leaves the nodes above the mean is
 * load that reaches the nodes below it, so if every giver stops `a` above the mean and every taker `b`
 * below it, a × (nodes above) = b × (nodes below): for a given spread of loads that split moves the
 * least load. When a fifth of the nodes hold the excess, a giver may stop about four tolerances
 * above the mean, where the takers stop one below; never more than twice the shard's spread (the
 * tolerance's own cap). With as many nodes on each side it is the tolerance.
 */
export function sideTolerance(state: RoundState, giverSide: boolean): number {
  const tol = toleranceOf(state);
  const sides = sidesByRound.get(state);
  if (tol <= 0 || !sides) return tol;
  const mine = giverSide ? sides.above : sides.below;
  const other = giverSide ? sides.below : sides.above;
  if (mine === 0 || other <= mine) return tol;
  return Math.max(tol, Math.min((tol * other) / mine, 2 * state.trigger.spread * state.mean));
}

/**
 * A taker-bound exchange (the giver keeps some of its excess): where the taker should rest and which
 * of the giver's VMs it sheds anyway (see `ExchangeState.rest`). If every giver stopped one tolerance
 * above the mean, the takers would rest (nodes above / nodes below) tolerances below it, the load
 * that leaves the one side being the load that reaches the other; never further than the taker's own
 * tolerance. The giver sheds anyway its largest VMs that fit in its excess beyond its own side's
 * tolerance: the exchange fills the taker toward that level with those (see `fillToRest` in
 * selection.ts), so a taker stops near it without a smaller VM (and a migration more) on the giver's
 * side. Called as the exchange opens and after each of its moves.
 */
function fitTaker(state: RoundState, pair: ExchangeState, candidates: Candidate[], tolerance: number): void {
  pair.shedAnyway = undefined;
  pair.shedCount = undefined;
  const sides = sidesByRound.get(state);
  if (!sides || sides.below === 0) return;
  let surplus = pair.giverLoad - state.mean - sideTolerance(state, true);
  if (surplus <= 0) return;
  const loads = loadsLargestFirst(state, candidates);
  let smallest = Number.POSITIVE_INFINITY;
  let count = 0;
  for (const x of loads) {
    if (x > surplus) break;
    surplus -= x;
    smallest = x;
    count++;
  }
  pair.shedAnyway = smallest;
  pair.shedCount = count;
  pair.rest = Math.min(tolerance, (toleranceOf(state) * sides.above) / sides.below);
}

/**
 * The order a round's exchanges are carried out in: the most imbalance removed per migration first
 * (the drop in the pair's sum of squared distances from the mean, over its moves; ties in the order
 * decided). Exchanges without moves keep their places. Orders are written in this order, so the
 * migrations that even the cluster most start first, and a run cut short has done the most it could.
 */
export function byValue(state: RoundState, decisions: PairDecision[]): PairDecision[] {
  const m = state.mean;
  const slots: number[] = [];
  // By decision, in a typed array: set at a few thousand scattered places, a plain array grew and boxed.
  const value = new Float64Array(decisions.length);
  for (let i = 0; i < decisions.length; i++) {
    const d = decisions[i] as PairDecision;
    if (d.moves.length === 0) continue;
    const before = (d.loads.requester - m) ** 2 + (d.loads.selected - m) ** 2;
    const after = (d.predicted.requester - m) ** 2 + (d.predicted.selected - m) ** 2;
    slots.push(i);
    value[i] = (before - after) / d.moves.length;
  }
  // The sign of value[b] − value[a], else of a − b (as `||` would fall back on 0 or NaN): small
  // integers, where a difference of values is a number the sort boxes on every comparison.
  const movers = slots.slice().sort((a, b) => {
    const va = value[a] as number;
    const vb = value[b] as number;
    return vb > va ? 1 : vb < va ? -1 : a - b;
  });
  const out = decisions.slice();
  for (let k = 0; k < slots.length; k++)
    out[slots[k] as number] = decisions[movers[k] as number] as PairDecision;
  return out;
}

function sameWeights(a: Weights, b: Weights): boolean {
  return (
    a.cpu === b.cpu &&
    a.io === b.io &&
    a.mem === b.mem &&
    (a.paging ?? 0) === (b.paging ?? 0) &&
    (a.net ?? 0) === (b.net ?? 0)
  );
}
