// Block 58's exceeds test at its boundaries, and the imbalance figures every report shows.
import { describe, expect, it } from 'vitest';
import { exceeds } from '../../../shared/domain/exceeds.ts';
import { countedImbalance, imbalance } from '../../../shared/domain/stats.ts';

describe('exceeds', () => {
  it('is the plain comparison with factor 1 and margin 0', () => {
    const plain = { thresholdFactor: 1, margin: 0 };
    expect(exceeds(2, 1, plain)).toBe(true);
    expect(exceeds(1, 1, plain)).toBe(false);
    expect(exceeds(1, 2, plain)).toBe(false);
  });

  it('holds exactly at the threshold factor and not just below it', () => {
    const factor = { thresholdFactor: 1.5, margin: 0 };
    expect(exceeds(15, 10, factor)).toBe(true);
    expect(exceeds(14.99, 10, factor)).toBe(false);
  });

  it('holds exactly at the margin and not just below it', () => {
    const margin = { thresholdFactor: 1, margin: 2 };
    expect(exceeds(12, 10, margin)).toBe(true);
    expect(exceeds(11.99, 10, margin)).toBe(false);
  });

  it('needs both the factor and the margin', () => {
    const both = { thresholdFactor: 1.1, margin: 5 };
    expect(exceeds(12, 10, both)).toBe(false); // factor met, margin not
    expect(exceeds(106, 100, both)).toBe(false); // margin met, factor not
    expect(exceeds(111, 100, both)).toBe(true);
  });

  it('never holds for equal loads, whatever the factor below 1 would allow', () => {
    expect(exceeds(0, 0, { thresholdFactor: 1, margin: 0 })).toBe(false);
    expect(exceeds(5, 5, { thresholdFactor: 0.5, margin: 0 })).toBe(false);
  });
});

describe('imbalance', () => {
  it('computes CV, max over mean, max and mean of uneven loads', () => {
    // Mean 4, deviations -2, 0, +2: variance 8/3.
    const i = imbalance([2, 4, 6]);
    expect(i.mean).toBe(4);
    expect(i.maxLoad).toBe(6);
    expect(i.maxOverMean).toBe(1.5);
    expect(i.cv).toBeCloseTo(Math.sqrt(8 / 3) / 4, 12);
  });

  it('finds the maximum wherever it sits, also among negative loads', () => {
    expect(imbalance([9, 1, 2]).maxLoad).toBe(9);
    expect(imbalance([1, 2, 9]).maxLoad).toBe(9);
    expect(imbalance([-3, -1, -2]).maxLoad).toBe(-1);
  });

  it('reports an empty cluster as even', () => {
    expect(imbalance([])).toEqual({ cv: 0, maxOverMean: 1, maxLoad: 0, mean: 0 });
  });

  it('reports zero or negative mean load as even but keeps the maximum and mean', () => {
    expect(imbalance([0, 0])).toEqual({ cv: 0, maxOverMean: 1, maxLoad: 0, mean: 0 });
    expect(imbalance([-2, 1])).toEqual({ cv: 0, maxOverMean: 1, maxLoad: 1, mean: -0.5 });
  });

  it('counts only nodes that may hold load (not draining, not dead)', () => {
    const i = countedImbalance([
      { load: 4 },
      { load: 6, draining: false, dead: false },
      { load: 100, draining: true },
      { load: 50, dead: true },
    ]);
    expect(i).toEqual(imbalance([4, 6]));
    expect(i.maxLoad).toBe(6);
  });
});
