// When to stop pre-copying a running guest (QEMU's convergence check, in the patent's terms: the
// memory pages modified since the image). A round writes the remainder while the guest runs; the
// guest dirties memory meanwhile at its dirty rate, and that is the next remainder. Everything is
// in wire bytes, what the rounds actually write: with sub-page deltas a page rewritten in a few
// lines costs a few lines. Another round pays only when it shrinks the remainder enough, and only
// while the whole migration stays within its budget of bytes moved; otherwise stop the guest and
// copy at once, so a guest that rewrites everything moves its memory about once, not once per round.

import { PAGE_BYTES } from './guests.ts';

/** What the source knows before deciding on the next round (sizes in wire bytes, rates per ms). */
export interface PrecopyState {
  /** Rounds already written. */
  rounds: number;
  /** Bytes the next round would write: before the first round, an upper bound (whole pages). */
  remainderBytes: number;
  /** Bytes per ms the image store took in (the last round's, or an estimate before the first). */
  transferBytesPerMs: number;
  /** Bytes per ms the guest's writes add to the next remainder; Infinity when it re-dirties faster than measured. */
  dirtyBytesPerMs: number;
  /** The most a remainder can hold: the guest's writable working set, as whole pages. */
  workingSetBytes: number;
  /** Bytes this migration's rounds wrote so far. */
  movedBytes: number;
  /** Bytes the whole migration may move, rounds and final delta (see budgetOf). */
  budgetBytes: number;
}

export interface PrecopyRules {
  maxRounds: number;
  /** Another round must leave at most this fraction of the remainder dirty (0.5: halve it). */
  shrink: number;
  /** A remainder this small is the final delta already: stop now. */
  doneBytes: number;
  /** The budget of bytes moved, as a multiple of the guest's resident memory. */
  maxMoved: number;
}

export const PRECOPY_RULES: PrecopyRules = { maxRounds: 4, shrink: 0.5, doneBytes: 64 * 1024, maxMoved: 1.1 };

export type PrecopyDecision =
  | { kind: 'round' }
  | {
      kind: 'stop';
      why: 'converged' | 'not converging' | 'over budget' | 'max rounds';
      predictedBytes: number;
    };

/** The bytes a migration of a guest holding `residentBytes` may move, rounds and final delta together. */
export const budgetOf = (residentBytes: number, rules: PrecopyRules = PRECOPY_RULES) =>
  rules.maxMoved * residentBytes;

/** Bytes the guest will have dirtied by the end of a round that writes `state.remainderBytes`. */
export function dirtiedDuringRound(state: PrecopyState): number {
  if (state.remainderBytes <= 0 || state.dirtyBytesPerMs <= 0) return 0;
  if (!(state.transferBytesPerMs > 0) || state.dirtyBytesPerMs === Number.POSITIVE_INFINITY)
    return state.workingSetBytes;
  const roundMs = state.remainderBytes / state.transferBytesPerMs;
  return Math.min(state.workingSetBytes, state.dirtyBytesPerMs * roundMs);
}

/**
 * Another pre-copy round, or stop the guest and copy the remainder now? A round runs only if the
 * remainder it predicts shrinks by `shrink` and the round, plus the final delta it predicts, keeps
 * the migration within its budget. Before the first round, a dirty rate the last report could not
 * bound (Infinity: it saw nearly every page dirtied) makes the shrink test say nothing, so the first
 * round runs anyway (QEMU's first pass) when even the worst case stays within the budget: this round,
 * then a final delta of the whole working set. Pages that code small (the hot guest's, about a
 * seventh) make that affordable, and the final delta is then only what the guest wrote during the
 * round; memory that does not code (random bytes) cannot afford it and stops at once. A rate still
 * unmeasured after that round stops the pre-copy as before.
 */
export function nextPrecopyStep(state: PrecopyState, rules: PrecopyRules = PRECOPY_RULES): PrecopyDecision {
  const predictedBytes = dirtiedDuringRound(state);
  const stop = (why: Extract<PrecopyDecision, { kind: 'stop' }>['why']) =>
    ({ kind: 'stop', why, predictedBytes }) as const;
  if (state.remainderBytes <= rules.doneBytes) return stop('converged');
  if (state.rounds >= rules.maxRounds) return stop('max rounds');
  if (state.rounds === 0 && state.dirtyBytesPerMs === Number.POSITIVE_INFINITY)
    return state.movedBytes + state.remainderBytes + state.workingSetBytes <= state.budgetBytes
      ? { kind: 'round' }
      : stop('not converging');
  if (predictedBytes > rules.shrink * state.remainderBytes) return stop('not converging');
  if (state.movedBytes + state.remainderBytes + predictedBytes > state.budgetBytes)
    return stop('over budget');
  return { kind: 'round' };
}

/**
 * Whether the source copies a round now: when `decision` says so, and also on the first step of a
 * VM never imaged yet (`imaged` false; a fresh one's first move). Such a VM leaves its target
 * nothing to restore from ahead of the stop: it would build the whole guest from the final image
 * while the guest is down (a 16 MiB restore: hundreds of ms, the bench's worst move). So one round
 * runs even when the convergence check says the remainder is small enough to leave to the final
 * delta ('converged': at most its floor, 64 KiB of wire), which is also all that round costs. A
 * remainder too large for the budget still stops at once: its final delta would be the whole
 * memory either way.
 */
export function runsRound(decision: PrecopyDecision, state: PrecopyState, imaged: boolean): boolean {
  if (decision.kind === 'round') return true;
  return !imaged && state.rounds === 0 && decision.why === 'converged';
}

/**
 * The dirty rate a measurement period shows, in pages per ms: `dirtiedPages` distinct pages over
 * `periodMs`. Distinct pages saturate at the working set, so a guest that dirtied (nearly) all it
 * holds in one period may have done so in any fraction of it: its rate is unbounded as far as we
 * know (Infinity).
 */
export function dirtyRateOf(m: { dirtiedPages: number; residentPages: number; periodMs: number }): number {
  if (m.dirtiedPages <= 0) return 0;
  if (m.dirtiedPages >= 0.9 * m.residentPages || !(m.periodMs > 0)) return Number.POSITIVE_INFINITY;
  return m.dirtiedPages / m.periodMs;
}

/**
 * The state before any round has run. Whole pages as they code (`wireRatio`, the kernel's sample
 * of how the VM's pages code; 1 without one): the last report's paging (`measured`) bounds the
 * rounds' wire bytes from above, so the first decision errs towards stopping. The budget is of the
 * resident memory itself, uncoded.
 */
export function firstPrecopyState(o: {
  residentPages: number;
  measured?: { dirtiedPages: number; residentPages: number; periodMs: number };
  wireRatio: number;
  transferBytesPerMs: number;
}): PrecopyState {
  const residentBytes = o.residentPages * PAGE_BYTES;
  const wire = o.wireRatio;
  return {
    rounds: 0,
    remainderBytes: residentBytes * wire,
    transferBytesPerMs: o.transferBytesPerMs,
    dirtyBytesPerMs: o.measured ? dirtyRateOf(o.measured) * PAGE_BYTES * wire : 0,
    workingSetBytes: (o.measured?.dirtiedPages ?? 0) * PAGE_BYTES * wire,
    movedBytes: 0,
    budgetBytes: budgetOf(residentBytes),
  };
}

/**
 * The state after a round that wrote `round.bytes` in `round.ms`: the transfer rate is measured;
 * from the second round on, the bytes it wrote are what the guest dirtied since the previous
 * round's snapshot (`lastRoundMs` earlier), which replaces the rate estimated before any round (a
 * whole-page bound that sub-page deltas undercut); the next remainder is what the guest dirties
 * during this round.
 */
export function afterRound(
  state: PrecopyState & { lastRoundMs?: number },
  round: { bytes: number; ms: number },
): PrecopyState & { lastRoundMs: number } {
  const ms = Math.max(round.ms, 1);
  const measured = state.rounds > 0 && state.lastRoundMs !== undefined;
  const dirtyBytesPerMs = measured ? round.bytes / Math.max(state.lastRoundMs!, 1) : state.dirtyBytesPerMs;
  const workingSetBytes = measured ? Math.max(state.workingSetBytes, round.bytes) : state.workingSetBytes;
  const dirtied = dirtyBytesPerMs === Number.POSITIVE_INFINITY ? workingSetBytes : dirtyBytesPerMs * round.ms;
  return {
    rounds: state.rounds + 1,
    remainderBytes: Math.min(workingSetBytes, dirtied),
    transferBytesPerMs: round.bytes / ms,
    dirtyBytesPerMs,
    workingSetBytes,
    movedBytes: state.movedBytes + round.bytes,
    budgetBytes: state.budgetBytes,
    lastRoundMs: round.ms,
  };
}
