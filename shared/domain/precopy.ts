// When to stop pre-copying a running guest (QEMU's convergence check, in the patent's terms: the
// memory pages modified since the image). A round writes the remainder while the guest runs; the
// guest dirties pages meanwhile at its dirty rate, and those are the next remainder. Another round
// pays only when it shrinks the remainder enough; otherwise stop the guest and copy at once, so a
// guest that dirties everything moves its memory about once, not once per round.

/** What the source knows before deciding on the next round. */
export interface PrecopyState {
  /** Rounds already written. */
  rounds: number;
  /** Pages the next round would write: the memory not yet copied, or dirtied since the last round. */
  remainderPages: number;
  /** Pages per ms the image store took in (the last round's, or an estimate before the first). */
  transferPagesPerMs: number;
  /** Pages per ms the guest dirties; Infinity when it re-dirties its working set faster than measured. */
  dirtyPagesPerMs: number;
  /** Distinct pages the guest writes (its writable working set): the most a round can leave dirty. */
  workingSetPages: number;
}

export interface PrecopyRules {
  maxRounds: number;
  /** Another round must leave at most this fraction of the remainder dirty (0.5: halve it). */
  shrink: number;
  /** A remainder this small is the final delta already: stop now. */
  donePages: number;
}

export const PRECOPY_RULES: PrecopyRules = { maxRounds: 4, shrink: 0.5, donePages: 8 };

export type PrecopyDecision =
  | { kind: 'round' }
  | { kind: 'stop'; why: 'converged' | 'not converging' | 'max rounds'; predictedPages: number };

/** Pages the guest will have dirtied by the end of a round that writes `state.remainderPages`. */
export function dirtiedDuringRound(state: PrecopyState): number {
  if (state.remainderPages <= 0 || state.dirtyPagesPerMs <= 0) return 0;
  if (!(state.transferPagesPerMs > 0) || state.dirtyPagesPerMs === Number.POSITIVE_INFINITY)
    return state.workingSetPages;
  const roundMs = state.remainderPages / state.transferPagesPerMs;
  return Math.min(state.workingSetPages, state.dirtyPagesPerMs * roundMs);
}

/** Another pre-copy round, or stop the guest and copy the remainder now? */
export function nextPrecopyStep(state: PrecopyState, rules: PrecopyRules = PRECOPY_RULES): PrecopyDecision {
  const predictedPages = dirtiedDuringRound(state);
  if (state.remainderPages <= rules.donePages) return { kind: 'stop', why: 'converged', predictedPages };
  if (state.rounds >= rules.maxRounds) return { kind: 'stop', why: 'max rounds', predictedPages };
  if (predictedPages > rules.shrink * state.remainderPages)
    return { kind: 'stop', why: 'not converging', predictedPages };
  return { kind: 'round' };
}

/**
 * The dirty rate a measurement period shows: `dirtiedPages` distinct pages over `periodMs`. Distinct
 * pages saturate at the working set, so a guest that dirtied (nearly) all it holds in one period
 * may have done so in any fraction of it: its rate is unbounded as far as we know (Infinity).
 */
export function dirtyRateOf(m: { dirtiedPages: number; residentPages: number; periodMs: number }): number {
  if (m.dirtiedPages <= 0) return 0;
  if (m.dirtiedPages >= 0.9 * m.residentPages || !(m.periodMs > 0)) return Number.POSITIVE_INFINITY;
  return m.dirtiedPages / m.periodMs;
}

/**
 * The state after a round that wrote `round.pages` in `round.ms`: the transfer rate is measured;
 * the pages it wrote were dirtied during the previous round, which bounds the dirty rate from
 * below; the next remainder is what the guest dirties during this one.
 */
export function afterRound(
  state: PrecopyState & { lastRoundMs?: number },
  round: { pages: number; ms: number },
): PrecopyState & { lastRoundMs: number } {
  const ms = Math.max(round.ms, 1);
  let dirtyPagesPerMs = state.dirtyPagesPerMs;
  let workingSetPages = state.workingSetPages;
  if (state.rounds > 0 && state.lastRoundMs !== undefined) {
    dirtyPagesPerMs = Math.max(dirtyPagesPerMs, round.pages / Math.max(state.lastRoundMs, 1));
    workingSetPages = Math.max(workingSetPages, round.pages);
  }
  const next = {
    rounds: state.rounds + 1,
    remainderPages: 0,
    transferPagesPerMs: round.pages / ms,
    dirtyPagesPerMs,
    workingSetPages,
    lastRoundMs: round.ms,
  };
  next.remainderPages = Math.min(
    workingSetPages,
    dirtyPagesPerMs === Number.POSITIVE_INFINITY ? workingSetPages : dirtyPagesPerMs * round.ms,
  );
  return next;
}
