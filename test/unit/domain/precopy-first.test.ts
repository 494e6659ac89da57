// The pre-copy's first state (`firstPrecopyState`, shared/domain/precopy.ts): whole resident pages
// scaled by how they code, the dirty rate and working set the last report measured (in the same
// coded bytes), and a budget of the resident memory itself, uncoded. Then what the first decision
// makes of it: memory that codes small can afford a first round even when the guest re-dirties
// everything, memory that does not code stops at once.
import { describe, expect, it } from 'vitest';
import { PAGE_BYTES } from '../../../shared/domain/guests.ts';
import { firstPrecopyState, nextPrecopyStep, runsRound } from '../../../shared/domain/precopy.ts';

describe('the state before the first pre-copy round', () => {
  it('without a measurement: the resident pages as they code, nothing dirtied, the budget uncoded', () => {
    const s = firstPrecopyState({ residentPages: 1000, wireRatio: 0.25, transferBytesPerMs: 5000 });
    expect(s).toEqual({
      rounds: 0,
      remainderBytes: 250 * PAGE_BYTES,
      transferBytesPerMs: 5000,
      dirtyBytesPerMs: 0,
      workingSetBytes: 0,
      movedBytes: 0,
      budgetBytes: 1.1 * 1000 * PAGE_BYTES,
    });
  });

  it('with a measurement: its dirty rate and dirtied pages, scaled by how the pages code', () => {
    // 100 of 1,000 pages dirtied in 400 ms: 0.25 pages per ms. Coded to half their size.
    const s = firstPrecopyState({
      residentPages: 1000,
      measured: { dirtiedPages: 100, residentPages: 1000, periodMs: 400 },
      wireRatio: 0.5,
      transferBytesPerMs: 1000,
    });
    expect(s.remainderBytes).toBe(500 * PAGE_BYTES);
    expect(s.dirtyBytesPerMs).toBe(0.25 * PAGE_BYTES * 0.5);
    expect(s.workingSetBytes).toBe(50 * PAGE_BYTES);
    expect(s.budgetBytes).toBe(1.1 * 1000 * PAGE_BYTES);
    expect(s.rounds).toBe(0);
    expect(s.movedBytes).toBe(0);
  });

  it('takes a quiet measurement (nothing dirtied) as a guest that writes nothing: a round runs', () => {
    const s = firstPrecopyState({
      residentPages: 64,
      measured: { dirtiedPages: 0, residentPages: 64, periodMs: 1000 },
      wireRatio: 1,
      transferBytesPerMs: 100,
    });
    expect([s.dirtyBytesPerMs, s.workingSetBytes]).toEqual([0, 0]);
    expect(nextPrecopyStep(s)).toEqual({ kind: 'round' });
  });

  it('lets memory that codes small afford a first round when the guest re-dirties everything, not memory that does not code', () => {
    // Every resident page dirtied in the period: the rate is unbounded, the working set all of it.
    const measured = { dirtiedPages: 1000, residentPages: 1000, periodMs: 1000 };
    const coded = firstPrecopyState({
      residentPages: 1000,
      measured,
      wireRatio: 1 / 7,
      transferBytesPerMs: 1,
    });
    expect(coded.dirtyBytesPerMs).toBe(Number.POSITIVE_INFINITY);
    expect(coded.workingSetBytes).toBeCloseTo((1000 * PAGE_BYTES) / 7, 3);
    // This round and then the whole working set: 2/7 of the memory, within 1.1 of it.
    expect(nextPrecopyStep(coded)).toEqual({ kind: 'round' });
    // Half-coded: 1.0 of the memory still fits; at 0.6 each (1.2) it does not.
    const half = firstPrecopyState({ residentPages: 1000, measured, wireRatio: 0.5, transferBytesPerMs: 1 });
    expect(nextPrecopyStep(half)).toEqual({ kind: 'round' });
    const raw = firstPrecopyState({ residentPages: 1000, measured, wireRatio: 0.6, transferBytesPerMs: 1 });
    expect(nextPrecopyStep(raw)).toMatchObject({ kind: 'stop', why: 'not converging' });
  });
});

describe('the budget at its edge (figures exact in binary)', () => {
  // In MiB, past the 64 KiB of a remainder that is the final delta already.
  const MiB = 2 ** 20;
  const state = {
    rounds: 1,
    remainderBytes: 100 * MiB,
    transferBytesPerMs: MiB,
    dirtyBytesPerMs: 0.125 * MiB,
    workingSetBytes: 40 * MiB,
    movedBytes: 0,
    budgetBytes: 112.5 * MiB,
  };

  it('lets a round run whose bytes, with the final delta it predicts, just fill the budget', () => {
    // 100 MiB take 100 ms, the guest dirties 12.5 MiB meanwhile: 112.5 MiB in all.
    expect(nextPrecopyStep(state)).toEqual({ kind: 'round' });
    expect(nextPrecopyStep({ ...state, budgetBytes: 112.25 * MiB })).toMatchObject({
      kind: 'stop',
      why: 'over budget',
    });
  });

  it('runs a first round over an unbounded dirty rate when it and the whole working set just fill the budget', () => {
    const first = { ...state, rounds: 0, dirtyBytesPerMs: Number.POSITIVE_INFINITY, budgetBytes: 140 * MiB };
    expect(nextPrecopyStep(first)).toEqual({ kind: 'round' });
    expect(nextPrecopyStep({ ...first, budgetBytes: 139.5 * MiB })).toMatchObject({
      kind: 'stop',
      why: 'not converging',
    });
  });
});

describe('whether the source copies a round (runsRound)', () => {
  const quiet = firstPrecopyState({ residentPages: 1, wireRatio: 0.5, transferBytesPerMs: 100 });
  const converged = nextPrecopyStep(quiet);

  it('runs one round for a VM never imaged, even when the remainder is within the floor', () => {
    expect(converged).toMatchObject({ kind: 'stop', why: 'converged' });
    expect(runsRound(converged, quiet, false)).toBe(true);
    expect(runsRound(converged, quiet, true)).toBe(false);
  });

  it('runs that round only once, and never against any other stop', () => {
    expect(runsRound(converged, { ...quiet, rounds: 1 }, false)).toBe(false);
    for (const why of ['not converging', 'over budget', 'max rounds'] as const)
      expect(runsRound({ kind: 'stop', why, predictedBytes: 0 }, quiet, false)).toBe(false);
    expect(runsRound({ kind: 'round' }, quiet, true)).toBe(true);
  });
});
