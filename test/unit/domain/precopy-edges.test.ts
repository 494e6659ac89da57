// The pre-copy check at its edges (in wire bytes): rates that are zero, unknown or unbounded, a round shorter than a
// millisecond, and the exact boundaries of its rules (shared/domain/precopy.ts).
import { describe, expect, it } from 'vitest';
import {
  afterRound,
  dirtiedDuringRound,
  dirtyRateOf,
  nextPrecopyStep,
  type PrecopyState,
} from '../../../shared/domain/precopy.ts';

const INF = Number.POSITIVE_INFINITY;

const aState = (over: Partial<PrecopyState> = {}): PrecopyState => ({
  rounds: 0,
  remainderBytes: 100,
  transferBytesPerMs: 1,
  dirtyBytesPerMs: 0.1,
  workingSetBytes: 40,
  movedBytes: 0,
  budgetBytes: 1e9,
  ...over,
});

describe('bytes dirtied during a round', () => {
  it('is none when there is nothing to write or the guest writes nothing, even at an unknown transfer rate', () => {
    expect(dirtiedDuringRound(aState({ remainderBytes: 0, transferBytesPerMs: 0 }))).toBe(0);
    expect(dirtiedDuringRound(aState({ remainderBytes: 0, transferBytesPerMs: 0, dirtyBytesPerMs: 0 }))).toBe(
      0,
    );
    expect(dirtiedDuringRound(aState({ dirtyBytesPerMs: 0, transferBytesPerMs: 0 }))).toBe(0);
    expect(dirtiedDuringRound(aState({ dirtyBytesPerMs: 0, transferBytesPerMs: Number.NaN }))).toBe(0);
  });

  it('is the whole working set when the transfer rate is not a positive number', () => {
    for (const rate of [0, -1, Number.NaN]) {
      expect(dirtiedDuringRound(aState({ transferBytesPerMs: rate })), `rate ${rate}`).toBe(40);
    }
  });

  it('is the whole working set for an unbounded dirty rate, however fast the transfer', () => {
    expect(dirtiedDuringRound(aState({ dirtyBytesPerMs: INF }))).toBe(40);
    expect(dirtiedDuringRound(aState({ dirtyBytesPerMs: INF, transferBytesPerMs: INF }))).toBe(40);
  });

  it('is the dirty rate times the round, capped by the working set (pinned)', () => {
    // 100 bytes at 1 byte/ms: 100 ms, at 0.1 bytes/ms 10 bytes; at 1 byte/ms 100, capped at 40.
    expect(dirtiedDuringRound(aState())).toBeCloseTo(10);
    expect(dirtiedDuringRound(aState({ dirtyBytesPerMs: 1 }))).toBe(40);
  });
});

describe('another round, at the boundaries of the rules', () => {
  it('still runs a round that exactly halves the remainder', () => {
    // 100 pages at 1 page/ms take 100 ms; at 0.5 pages/ms the guest dirties exactly 50 (in bytes,
    // above the size that counts as converged, and well within the budget).
    const PAGE = 65536;
    const s = aState({
      remainderBytes: 100 * PAGE,
      transferBytesPerMs: PAGE,
      dirtyBytesPerMs: 0.5 * PAGE,
      workingSetBytes: 100 * PAGE,
    });
    expect(nextPrecopyStep(s)).toEqual({ kind: 'round' });
    expect(nextPrecopyStep({ ...s, dirtyBytesPerMs: 0.51 * PAGE })).toMatchObject({ why: 'not converging' });
  });
});

describe('the dirty rate a measurement shows', () => {
  it('is zero when nothing was dirtied, whatever the period or the resident size', () => {
    expect(dirtyRateOf({ dirtiedPages: 0, residentPages: 200, periodMs: 0 })).toBe(0);
    expect(dirtyRateOf({ dirtiedPages: 0, residentPages: 0, periodMs: 500 })).toBe(0);
  });

  it('is unbounded from 90 % of the resident pages on, and measured just below', () => {
    expect(dirtyRateOf({ dirtiedPages: 90, residentPages: 100, periodMs: 500 })).toBe(INF);
    expect(dirtyRateOf({ dirtiedPages: 89, residentPages: 100, periodMs: 500 })).toBeCloseTo(0.178);
  });

  it('is unbounded over a period that is not positive (a clock that stepped back)', () => {
    expect(dirtyRateOf({ dirtiedPages: 10, residentPages: 100, periodMs: -5 })).toBe(INF);
    expect(dirtyRateOf({ dirtiedPages: 10, residentPages: 100, periodMs: 0 })).toBe(INF);
  });
});

describe('the state after a round', () => {
  it('learns no dirty rate from the first round: its pages are the memory, not pages the guest dirtied', () => {
    const next = afterRound(
      { ...aState({ remainderBytes: 1000, dirtyBytesPerMs: 0.1, workingSetBytes: 40 }), lastRoundMs: 10 },
      { bytes: 1000, ms: 100 },
    );
    expect(next).toMatchObject({ rounds: 1, dirtyBytesPerMs: 0.1, workingSetBytes: 40, lastRoundMs: 100 });
    expect(next.remainderBytes).toBeCloseTo(10);
  });

  it("learns no dirty rate without the previous round's duration", () => {
    const next = afterRound(aState({ rounds: 2, dirtyBytesPerMs: 0.1, workingSetBytes: 40 }), {
      bytes: 30,
      ms: 10,
    });
    expect(next).toMatchObject({ rounds: 3, dirtyBytesPerMs: 0.1, workingSetBytes: 40, remainderBytes: 1 });
  });

  it('leaves the whole working set dirty after a round shorter than a millisecond, for an unbounded dirty rate', () => {
    const next = afterRound(aState({ dirtyBytesPerMs: INF, workingSetBytes: 40 }), { bytes: 100, ms: 0 });
    expect(next).toMatchObject({ remainderBytes: 40, transferBytesPerMs: 100, lastRoundMs: 0 });
  });
});
