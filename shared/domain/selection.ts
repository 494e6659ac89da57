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
}

/**
 * Whether moving `c` is an improvement: it never raises the pair's maximum, it shrinks the pair's
 * imbalance and it brings the pair closer to the aimed gap.
 */
export function improves(c: Candidate, s: ExchangeState): boolean {
  const giver = s.giverLoad - c.loadOnSource;
  const taker = s.takerLoad + c.loadOnTarget;
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

/** Two VMs trading places: `give` leaves the giver for the taker, `take` leaves the taker for the giver. */
export interface Swap {
  /** A giver's VM; loads as in `Candidate` (source = giver, target = taker). */
  give: Candidate;
  /** A taker's VM; its `loadOnSource` is its load on the taker, `loadOnTarget` its load on the giver. */
  take: Candidate;
}

/** The pair's loads after a swap. */
function afterSwap(w: Swap, s: ExchangeState) {
  return {
    giver: s.giverLoad - w.give.loadOnSource + w.take.loadOnTarget,
    taker: s.takerLoad + w.give.loadOnTarget - w.take.loadOnSource,
  };
}

/** Whether a swap improves the pair by the same law as a single move (see `improves`). */
export function swapImproves(w: Swap, s: ExchangeState): boolean {
  const { giver, taker } = afterSwap(w, s);
  const maxBefore = Math.max(s.giverLoad, s.takerLoad);
  if (Math.max(giver, taker) > maxBefore + 1e-12) return false;
  const gapBefore = s.giverLoad - s.takerLoad;
  const gapAfter = giver - taker;
  if (Math.abs(gapAfter) >= Math.abs(gapBefore) - 1e-12) return false;
  return Math.abs(gapAfter - s.aimGap) < Math.abs(gapBefore - s.aimGap) - 1e-12;
}

/**
 * The swap that leaves the pair closest to the aimed gap among those that improve it, or undefined.
 * Used when no single move improves the pair: giving a 4 and taking a 3 moves a net 1.
 */
export function selectSwap(
  gives: readonly Candidate[],
  takes: readonly Candidate[],
  state: ExchangeState,
): Swap | undefined {
  let best: Swap | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const give of gives) {
    for (const take of takes) {
      const w = { give, take };
      if (!swapImproves(w, state)) continue;
      const { giver, taker } = afterSwap(w, state);
      const score = Math.abs(giver - taker - state.aimGap);
      if (score < bestScore) {
        best = w;
        bestScore = score;
      }
    }
  }
  return best;
}
