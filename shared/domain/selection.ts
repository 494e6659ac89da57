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

/** Block 100: the search load, half the difference between the two loads. */
export function searchLoad(requesterLoad: number, selectedLoad: number): number {
  return (requesterLoad - selectedLoad) / 2;
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
