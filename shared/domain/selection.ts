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
 * Scratch for `fillToRest`, which a round calls at most steps of its thousands of exchanges: the
 * positions (in the exchange's candidates) of the VMs the giver sheds anyway and of those that may
 * fill the taker, and their sizes. Each call refills them before it reads them; positions rather
 * than the candidates themselves, so that nothing of a round stays reachable from here after it.
 * A fresh pool, sorted list of sizes and shed list per call were the largest share of what a
 * 10,000-node round allocated.
 */
const scratch = { shed: new Int32Array(64), pool: new Int32Array(64), sizes: new Float64Array(64) };

/** The scratch lists, with room for `n` entries each. */
function scratchFor(n: number): typeof scratch {
  if (scratch.shed.length < n) {
    scratch.shed = new Int32Array(2 * n);
    scratch.pool = new Int32Array(2 * n);
    scratch.sizes = new Float64Array(2 * n);
  }
  return scratch;
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
  const { shed, pool, sizes } = scratchFor(candidates.length);
  const shedding = shedAnyway(candidates, state, anyway, shed);
  let n = 0;
  for (let k = 0; k < shedding; k++) {
    const c = candidates[shed[k] as number] as Candidate;
    if (c.loadOnSource <= search + 1e-12 && improves(c, state)) {
      pool[n] = shed[k] as number;
      sizes[n] = c.loadOnSource;
      n++;
    }
  }
  if (n === 0) return undefined;
  ascending(sizes, n);
  const count = countToRest(sizes, n, fill, search, tol);
  if (count === 0) return undefined;
  // What `count` of them add up to at least and at most, with and without one of them.
  const smallestLess = sumOf(sizes, 0, count - 1);
  const smallest = sumOf(sizes, 0, count);
  const largestLess = sumOf(sizes, n - count + 1, n);
  const largest = sumOf(sizes, n - count, n);
  let best: Candidate | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (let k = 0; k < n; k++) {
    const c = candidates[pool[k] as number] as Candidate;
    const x = c.loadOnSource;
    // What the other count − 1 may add: between their smallest and their largest sums.
    const low = count > 1 && x <= (sizes[count - 2] as number) ? smallest - x : smallestLess;
    const high = count > 1 && x >= (sizes[n - count + 1] as number) ? largest - x : largestLess;
    if (high < search - tol - x - 1e-12 || low > search - x + 1e-12) continue;
    const score =
      count === 2 ? pairMiss(candidates, pool, n, k, fill, search, tol) : Math.abs(x - fill / count);
    if (score < bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

/** The sum of `sizes[from]` … `sizes[to − 1]`, added in that order. */
function sumOf(sizes: Float64Array, from: number, to: number): number {
  let total = 0;
  for (let i = from; i < to; i++) total += sizes[i] as number;
  return total;
}

/** Above this many, the scratch lists are sorted by the built-in sort rather than by insertion. */
const INSERTION_SORT_MAX = 32;

/**
 * Sorts `xs[0]` … `xs[n − 1]` in place, smallest first: by insertion over a node's few VMs (the
 * typed array's own sort needs a view of the first n, an object per call).
 */
function ascending(xs: Float64Array, n: number): void {
  if (n > INSERTION_SORT_MAX) {
    xs.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = xs[i] as number;
    let j = i - 1;
    while (j >= 0 && (xs[j] as number) > x) {
      xs[j + 1] = xs[j] as number;
      j--;
    }
    xs[j + 1] = x;
  }
}

/**
 * Two VMs, the pool's `k`th and the best other: how far from `fill` they land at best, within the
 * window. The pool holds positions in `candidates`.
 */
function pairMiss(
  candidates: readonly Candidate[],
  pool: Int32Array,
  n: number,
  k: number,
  fill: number,
  search: number,
  tol: number,
): number {
  const x = (candidates[pool[k] as number] as Candidate).loadOnSource;
  let miss = Number.POSITIVE_INFINITY;
  for (let j = 0; j < n; j++) {
    if (j === k) continue;
    const sum = x + (candidates[pool[j] as number] as Candidate).loadOnSource;
    if (sum > search + 1e-12 || sum < search - tol - 1e-12) continue;
    miss = Math.min(miss, Math.abs(fill - sum));
  }
  return miss;
}

/**
 * The giver's VMs it sheds anyway: those of at least `anyway`, at most the `shedCount` largest (the
 * first of equal ones), as positions in `candidates`, in candidate order or, when some are left out,
 * largest first. Written into `into`; returns how many.
 */
function shedAnyway(
  candidates: readonly Candidate[],
  state: ExchangeState,
  anyway: number,
  into: Int32Array,
): number {
  const count = state.shedCount ?? candidates.length;
  if (count === 0) return 0;
  let m = 0;
  for (let k = 0; k < candidates.length; k++) {
    if ((candidates[k] as Candidate).loadOnSource >= anyway - 1e-12) into[m++] = k;
  }
  if (m <= count) return m;
  largestFirst(candidates, into, m);
  return count;
}

/**
 * Sorts the first `m` positions by their candidates' loads, largest first, equal loads in position
 * order (as the stable sort of the candidates before did): by insertion over a node's few VMs.
 */
function largestFirst(candidates: readonly Candidate[], at: Int32Array, m: number): void {
  if (m > INSERTION_SORT_MAX) {
    const load = (k: number) => (candidates[k] as Candidate).loadOnSource;
    at.subarray(0, m).sort((a, b) => (load(b) > load(a) ? 1 : load(b) < load(a) ? -1 : a - b));
    return;
  }
  for (let i = 1; i < m; i++) {
    const p = at[i] as number;
    const x = (candidates[p] as Candidate).loadOnSource;
    let j = i - 1;
    while (j >= 0 && (candidates[at[j] as number] as Candidate).loadOnSource < x) {
      at[j + 1] = at[j] as number;
      j--;
    }
    at[j + 1] = p;
  }
}

/**
 * The fewest of `sizes[0]` … `sizes[n − 1]` (ascending) whose sum can come nearest `fill` and land
 * within [search − tol, search]: k of them reach about any sum between the k smallest and the k
 * largest. 0 when none comes nearer than nothing.
 */
function countToRest(sizes: Float64Array, n: number, fill: number, search: number, tol: number): number {
  let count = 0;
  let miss = fill;
  let low = 0;
  let high = 0;
  for (let k = 1; k <= n; k++) {
    low += sizes[k - 1] as number;
    high += sizes[n - k] as number;
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
