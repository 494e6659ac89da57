// Figs. 6 and 7: which VM the giving node of a pair moves, under each selection rule.
import type { SelectionRule, VmInfo } from './types.ts';

/** A VM that passed the constraints, with its load on each side of the pair. */
export interface Candidate {
  vm: VmInfo;
  /** Its load under the giver's weights (what the giver sheds). */
  loadOnSource: number;
  /** Its load under the taker's weights (what the taker gains). */
  loadOnTarget: number;
}

/** The pair during an exchange: current loads and the gap (giver − taker) the exchange aims for. */
export interface ExchangeState {
  giverLoad: number;
  takerLoad: number;
  /** 0 to even the pair (the patent); larger when the exchange should stop at the mean. */
  aimGap: number;
  /**
   * How far from the aim each side may end (load units, default 0): the exchange stops once the
   * remaining transfer is within it, and prefers the largest VM that lands within it.
   */
  tolerance?: number | undefined;
  /**
   * Where within the tolerance the taker should stop short of its aim (load units, default 0: as near
   * the aim as the largest VM allows). Used only with `shedAnyway`.
   */
  rest?: number | undefined;
  /**
   * VMs at least this large are ones the giver sheds anyway before it is within its own tolerance
   * (default: none). The exchange fills the taker toward `rest` with them, as many and of the sizes
   * that land it nearest (see `fillToRest`): which of them goes where costs no migration.
   */
  shedAnyway?: number | undefined;
  /** How many VMs the giver sheds anyway (its largest; default: every VM of at least `shedAnyway`). */
  shedCount?: number | undefined;
}

/**
 * Whether moving `c` is an improvement: it never raises the pair's maximum, it shrinks the pair's
 * imbalance and it brings the pair closer to the aimed gap.
 */
export function improves(c: Candidate, s: ExchangeState): boolean {
  return improvesTo(s.giverLoad - c.loadOnSource, s.takerLoad + c.loadOnTarget, s);
}

/** The law behind `improves` and `swapImproves`, on the pair's loads after the exchange. */
function improvesTo(giver: number, taker: number, s: ExchangeState): boolean {
  const maxBefore = Math.max(s.giverLoad, s.takerLoad);
  if (Math.max(giver, taker) > maxBefore + 1e-12) return false;
  const gapBefore = s.giverLoad - s.takerLoad;
  const gapAfter = giver - taker;
  if (Math.abs(gapAfter) >= Math.abs(gapBefore) - 1e-12) return false;
  return Math.abs(gapAfter - s.aimGap) < Math.abs(gapBefore - s.aimGap) - 1e-12;
}

/** The candidate the rule picks among those that improve the pair, or undefined when none does. */
export function selectVm(
  candidates: readonly Candidate[],
  state: ExchangeState,
  rule: SelectionRule,
): Candidate | undefined {
  // Block 100: the search load, half the difference between the two loads (less the aimed gap).
  const search = (state.giverLoad - state.takerLoad - state.aimGap) / 2;
  const tol = state.tolerance ?? 0;
  if (tol > 0 && rule === 'best-balance') return largestWithin(candidates, state, search, tol);
  let best: Candidate | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    if (!improves(c, state)) continue;
    const score = scoreOf(c, state, search, rule);
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Best-balance with a tolerance: with VMs the giver sheds anyway, the taker filled toward its rest
 * (`fillToRest`); else nothing once the remaining transfer `search` is within it; else, among
 * the improving VMs that leave the remainder within it without passing the aim (the taker stays at or
 * below it, the giver at or above it), a VM the giver sheds anyway that stops nearest `rest`, else the
 * largest; failing those, the one nearest the aim.
 */
function largestWithin(
  candidates: readonly Candidate[],
  state: ExchangeState,
  search: number,
  tol: number,
): Candidate | undefined {
  const rest = state.rest ?? 0;
  const anyway = state.shedAnyway ?? Number.POSITIVE_INFINITY;
  if (anyway < Number.POSITIVE_INFINITY) {
    const fill = fillToRest(candidates, state, search, tol, anyway);
    if (fill) return fill;
  }
  if (search <= tol) return undefined;
  let best: Candidate | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    if (!improves(c, state)) continue;
    const short = search - c.loadOnSource;
    // Short of the aim by at most the tolerance, the largest VM wins (fewer migrations); else the
    // nearest. Passing the aim moves load that must come back: both sides stop short of the mean
    // move less load for the same spread of loads. A VM the giver sheds anyway may stop the taker
    // where it should rest instead: the same migrations, a taker nearer its level.
    const within = short >= -1e-12 && short <= tol;
    const fits = within && c.loadOnSource >= anyway - 1e-12;
    const score = fits ? Math.abs(short - rest) - 2e9 : within ? -c.loadOnSource - 1e9 : Math.abs(short);
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/**
 * A taker-bound exchange with VMs the giver sheds anyway (its `shedCount` largest, each at least
 * `shedAnyway`): which of them go to this taker costs no migration, only where it lands. So the
 * exchange takes the fewest of them that bring the taker nearest its rest, within the tolerance and
 * never past the aim: each the one nearest an equal share of what is left to fill from which the
 * others can still finish. Undefined when none of them helps (the rule before applies).
 */
function fillToRest(
  candidates: readonly Candidate[],
  state: ExchangeState,
  search: number,
  tol: number,
  anyway: number,
): Candidate | undefined {
  const fill = search - (state.rest ?? 0);
  if (fill <= 0) return undefined;
  const pool: Candidate[] = [];
  for (const c of shedAnyway(candidates, state, anyway)) {
    if (c.loadOnSource <= search + 1e-12 && improves(c, state)) pool.push(c);
  }
  if (pool.length === 0) return undefined;
  const sizes = pool.map((c) => c.loadOnSource).sort((a, b) => a - b);
  const count = countToRest(sizes, fill, search, tol);
  if (count === 0) return undefined;
  const n = sizes.length;
  const sum = (from: number, to: number) => {
    let total = 0;
    for (let i = from; i < to; i++) total += sizes[i] as number;
    return total;
  };
  const smallest = [sum(0, count - 1), sum(0, count)];
  const largest = [sum(n - count + 1, n), sum(n - count, n)];
  let best: Candidate | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const c of pool) {
    const x = c.loadOnSource;
    // What the other count − 1 may add: between their smallest and their largest sums.
    const low =
      count > 1 && x <= (sizes[count - 2] as number) ? (smallest[1] as number) - x : (smallest[0] as number);
    const high =
      count > 1 && x >= (sizes[n - count + 1] as number)
        ? (largest[1] as number) - x
        : (largest[0] as number);
    if (high < search - tol - x - 1e-12 || low > search - x + 1e-12) continue;
    const score = count === 2 ? pairMiss(pool, c, fill, search, tol) : Math.abs(x - fill / count);
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/** Two VMs, `c` and the best other: how far from `fill` they land at best, within the window. */
function pairMiss(
  pool: readonly Candidate[],
  c: Candidate,
  fill: number,
  search: number,
  tol: number,
): number {
  let miss = Number.POSITIVE_INFINITY;
  for (const d of pool) {
    if (d === c) continue;
    const sum = c.loadOnSource + d.loadOnSource;
    if (sum > search + 1e-12 || sum < search - tol - 1e-12) continue;
    miss = Math.min(miss, Math.abs(fill - sum));
  }
  return miss;
}

/** The giver's VMs it sheds anyway: those of at least `anyway`, at most the `shedCount` largest. */
function shedAnyway(
  candidates: readonly Candidate[],
  state: ExchangeState,
  anyway: number,
): readonly Candidate[] {
  const count = state.shedCount ?? candidates.length;
  if (count === 0) return [];
  const above = candidates.filter((c) => c.loadOnSource >= anyway - 1e-12);
  if (above.length <= count) return above;
  return above.sort((a, b) => b.loadOnSource - a.loadOnSource).slice(0, count);
}

/**
 * The fewest of `sizes` (ascending) whose sum can come nearest `fill` and land within [search − tol,
 * search]: k of them reach about any sum between the k smallest and the k largest. 0 when none comes
 * nearer than nothing.
 */
function countToRest(sizes: readonly number[], fill: number, search: number, tol: number): number {
  let count = 0;
  let miss = fill;
  let low = 0;
  let high = 0;
  for (let k = 1; k <= sizes.length; k++) {
    low += sizes[k - 1] as number;
    high += sizes[sizes.length - k] as number;
    if (low > search + 1e-12) break;
    if (high < search - tol - 1e-12) continue;
    const off = fill < low ? low - fill : fill > high ? fill - high : 0;
    if (off < miss - 1e-12) {
      count = k;
      miss = off;
    }
    if (low > fill) break;
  }
  return count;
}

/** Lower is better. */
function scoreOf(c: Candidate, s: ExchangeState, search: number, rule: SelectionRule): number {
  switch (rule) {
    case 'best-balance': {
      // Each load under its own node's weights: the move that leaves the pair closest to the aim.
      const gapAfter = s.giverLoad - c.loadOnSource - (s.takerLoad + c.loadOnTarget);
      return Math.abs(gapAfter - s.aimGap);
    }
    case 'half-diff':
      return Math.abs(c.loadOnSource - search);
    case 'target':
      return Math.abs((c.vm.targetLoad ?? c.loadOnSource) - search);
    case 'largest':
      return -c.loadOnSource;
  }
}

/** VMs trading places: `give` leave the giver for the taker, `take` leave the taker for the giver. */
export interface Swap {
  /** Giver's VMs; loads as in `Candidate` (source = giver, target = taker). */
  give: Candidate[];
  /** Taker's VMs; `loadOnSource` is the load on the taker, `loadOnTarget` the load on the giver. */
  take: Candidate[];
}

/** Three-VM swaps (two for one) are searched only when both sides have at most this many candidates. */
export const MULTI_SWAP_LIMIT = 32;

/** The pair's loads after a swap. */
function afterSwap(w: Swap, s: ExchangeState) {
  let giver = s.giverLoad;
  let taker = s.takerLoad;
  for (const c of w.give) {
    giver -= c.loadOnSource;
    taker += c.loadOnTarget;
  }
  for (const c of w.take) {
    giver += c.loadOnTarget;
    taker -= c.loadOnSource;
  }
  return { giver, taker };
}

/** Whether a swap improves the pair by the same law as a single move (see `improves`). */
export function swapImproves(w: Swap, s: ExchangeState): boolean {
  const { giver, taker } = afterSwap(w, s);
  return improvesTo(giver, taker, s);
}

/**
 * The swap that leaves the pair closest to the aimed gap among those that improve it, or undefined.
 * Used when no single move improves the pair: giving a 4 and taking a 3 moves a net 1. One for one
 * first; when none helps and `maxVms` allows three migrations, two for one either way (give a 9, take
 * a 4 and a 4), on nodes small enough (`MULTI_SWAP_LIMIT`) for every combination to be tried.
 */
export function selectSwap(
  gives: readonly Candidate[],
  takes: readonly Candidate[],
  state: ExchangeState,
  maxVms = 2,
  minNet = 0,
): Swap | undefined {
  const one = bestSwap(singles(gives), singles(takes), state, minNet);
  if (one || maxVms < 3 || gives.length > MULTI_SWAP_LIMIT || takes.length > MULTI_SWAP_LIMIT) return one;
  const giveTwo = bestSwap(couples(gives), singles(takes), state, minNet);
  const takeTwo = bestSwap(singles(gives), couples(takes), state, minNet);
  if (!giveTwo || !takeTwo) return giveTwo ?? takeTwo;
  return score(giveTwo, state) <= score(takeTwo, state) ? giveTwo : takeTwo;
}

function singles(cs: readonly Candidate[]): Candidate[][] {
  return cs.map((c) => [c]);
}

function couples(cs: readonly Candidate[]): Candidate[][] {
  const out: Candidate[][] = [];
  for (let i = 0; i < cs.length; i++) {
    for (let j = i + 1; j < cs.length; j++) out.push([cs[i] as Candidate, cs[j] as Candidate]);
  }
  return out;
}

function score(w: Swap, s: ExchangeState): number {
  const { giver, taker } = afterSwap(w, s);
  return Math.abs(giver - taker - s.aimGap);
}

/**
 * The improving swap nearest the aim. Its net transfer must exceed `minNet` on both nodes: a swap that
 * moves less (two VMs of about one size) costs two or three migrations for a change the exceeds test
 * would not act on.
 */
function bestSwap(
  gives: Candidate[][],
  takes: Candidate[][],
  state: ExchangeState,
  minNet: number,
): Swap | undefined {
  let best: Swap | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const give of gives) {
    for (const take of takes) {
      const w = { give, take };
      if (!swapImproves(w, state)) continue;
      const { giver, taker } = afterSwap(w, state);
      if (state.giverLoad - giver <= minNet || taker - state.takerLoad <= minNet) continue;
      const sc = score(w, state);
      if (sc < bestScore) {
        best = w;
        bestScore = sc;
      }
    }
  }
  return best;
}
