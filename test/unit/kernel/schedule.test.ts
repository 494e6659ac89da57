import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shareCapacity, shareWeights } from '../../../node-agent/kernel/schedule.ts';

const claims = fc.array(
  fc.record({
    demand: fc.integer({ min: 0, max: 10_000 }),
    weight: fc.double({ min: 0.1, max: 10, noNaN: true }),
  }),
  { maxLength: 12 },
);

describe('sharing a node by the schedule', () => {
  it('gives everyone its demand when the node has room', () => {
    const shares = shareCapacity(1000, [
      { id: 'a', demand: 300, weight: 1 },
      { id: 'b', demand: 200, weight: 5 },
    ]);
    expect(Object.fromEntries(shares)).toEqual({ a: 300, b: 200 });
  });

  it('splits an overloaded node by weight', () => {
    const shares = shareCapacity(1000, [
      { id: 'a', demand: 1000, weight: 3 },
      { id: 'b', demand: 1000, weight: 1 },
    ]);
    expect(Object.fromEntries(shares)).toEqual({ a: 750, b: 250 });
  });

  it('passes what a modest VM leaves on to the others', () => {
    const shares = shareCapacity(1000, [
      { id: 'small', demand: 100, weight: 1 },
      { id: 'a', demand: 1000, weight: 1 },
      { id: 'b', demand: 1000, weight: 1 },
    ]);
    expect(Object.fromEntries(shares)).toEqual({ small: 100, a: 450, b: 450 });
  });

  it('never exceeds capacity or demand, and wastes nothing while anyone still wants more', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50_000 }), claims, (capacity, list) => {
        const withIds = list.map((c, i) => ({ ...c, id: `vm${i}` }));
        const shares = shareCapacity(capacity, withIds);
        const total = [...shares.values()].reduce((a, b) => a + b, 0);
        expect(total).toBeLessThanOrEqual(capacity);
        for (const c of withIds) {
          const share = shares.get(c.id)!;
          expect(Number.isInteger(share)).toBe(true);
          expect(share).toBeGreaterThanOrEqual(0);
          expect(share).toBeLessThanOrEqual(c.demand);
        }
        const demand = withIds.reduce((a, c) => a + c.demand, 0);
        // Flooring loses under one unit per VM.
        expect(total).toBeGreaterThanOrEqual(Math.min(capacity, demand) - withIds.length);
      }),
    );
  });

  it('weighs VMs without a target load as the mean of those with one', () => {
    expect(shareWeights([4, undefined, 2])).toEqual([4, 3, 2]);
    expect(shareWeights([undefined, undefined])).toEqual([1, 1]);
  });
});
