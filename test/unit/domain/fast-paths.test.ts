// The balancer run's fast paths answer exactly what the simple code they replace answers: a speed-up
// that changed one digit of a reason or one decision would fail here (and the golden fixtures).
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { IdIndex } from '../../../shared/domain/id-index.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { fmt, toFixed3 } from '../../../shared/domain/round-state.ts';
import { aConfig, aNode, aRound, vmsOn } from './fixtures.ts';

describe('toFixed3', () => {
  const same = (x: number) => expect(toFixed3(x)).toBe(x.toFixed(3));

  it('gives toFixed(3) for any double', () => {
    fc.assert(fc.property(fc.double(), (x) => toFixed3(x) === x.toFixed(3)));
  });

  it('gives toFixed(3) next to every rounding tie (thousandths plus or minus half a thousandth)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -2_000_000_000, max: 2_000_000_000 }),
        fc.constantFrom(-0.0005, -0.00049999, 0, 0.00049999, 0.0005, 0.00050001),
        (k, off) => {
          const x = k / 1000 + off;
          return toFixed3(x) === x.toFixed(3);
        },
      ),
    );
  });

  it('gives toFixed(3) on the pinned edges: ties, signs, zero, huge and non-finite values', () => {
    for (const x of [
      0.0005,
      -0.0005,
      1.0005,
      1.2345,
      2.5e-4,
      0.9995,
      0.9994999999,
      123.4565,
      999_999.9995,
      -0.0001,
      -0,
      0,
      5e-324,
      1e6,
      1e21,
      -1e21,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ])
      same(x);
  });

  it('answers without toFixed, its slow general path, except near a rounding tie or for a large value', () => {
    // The reason toFixed3 exists: a round formats tens of thousands of loads (see its comment).
    const spy = vi.spyOn(Number.prototype, 'toFixed');
    try {
      const fast = [1.2344, -3.25, 0.1, 42, 999_999.25].map(toFixed3);
      const callsFast = spy.mock.calls.length;
      const slow = [1.0005, -0.0005, 1e7].map(toFixed3);
      const callsSlow = spy.mock.calls.length - callsFast;
      expect(fast).toEqual(['1.234', '-3.250', '0.100', '42.000', '999999.250']);
      expect(slow).toEqual(['1.000', '-0.001', '10000000.000']);
      expect([callsFast, callsSlow]).toEqual([0, 3]);
    } finally {
      spy.mockRestore();
    }
  });

  it('is what fmt prints for a fraction, and fmt prints integers whole', () => {
    expect(fmt(1.23456)).toBe('1.235');
    expect(fmt(-0.0001)).toBe('-0.000');
    expect(fmt(12)).toBe('12');
    expect(fmt(-0)).toBe('0');
  });
});

describe("a round's expected loads (built on first read)", () => {
  const input = aRound(
    [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c' }), aNode({ id: 'd' })],
    [...vmsOn('a', [5, 4, 3, 2]), ...vmsOn('b', [1]), ...vmsOn('c', [2, 2, 2]), ...vmsOn('d', [1, 1])],
  );
  const decide = () => decideRound(input, aConfig({ pairing: 'spread' }), createRng(3));

  it('are each node load as it started, less what it gave and plus what it took', () => {
    const d = decide();
    expect(d.moves.length).toBeGreaterThan(0);
    const loads: Record<string, number> = { a: 14, b: 1, c: 6, d: 2 };
    for (const m of d.moves) {
      loads[m.from] = (loads[m.from] as number) - m.loadOnSource;
      loads[m.to] = (loads[m.to] as number) + m.loadOnTarget;
    }
    for (const [id, load] of Object.entries(loads)) expect(d.expected?.[id]).toBeCloseTo(load, 9);
  });

  it('are one object however often read, and plain data once copied or serialised', () => {
    const d = decide();
    expect(d.expected).toBe(d.expected);
    expect({ ...d }.expected).toEqual(d.expected);
    expect(JSON.parse(JSON.stringify(d)).expected).toEqual(d.expected);
    expect(Object.keys(d)).toEqual(['pairs', 'moves', 'skipped', 'before', 'after', 'expected', 'trigger']);
  });

  it('may be replaced like any field', () => {
    const d = decide();
    d.expected = { a: 1 };
    expect(d.expected).toEqual({ a: 1 });
    d.expected = undefined;
    expect(d.expected).toBeUndefined();
  });
});

describe('IdIndex', () => {
  it('numbers ids as a Map of first sightings would, whatever it was told to expect', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 6 }), { maxLength: 200 }), fc.nat(64), (ids, expected) => {
        const index = new IdIndex(expected);
        const map = new Map<string, number>();
        for (const id of ids) {
          const known = map.get(id);
          if (index.add(id) !== (known ?? -1)) return false;
          if (known === undefined) map.set(id, map.size);
        }
        if (index.size !== map.size) return false;
        return [...ids, 'never added'].every((id) => index.get(id) === (map.get(id) ?? -1));
      }),
    );
  });

  it('grows past what it expected and still finds every id', () => {
    const index = new IdIndex(2);
    for (let n = 0; n < 1000; n++) expect(index.add(`vm-${n}`)).toBe(-1);
    expect(index.size).toBe(1000);
    expect(index.get('vm-999')).toBe(999);
    expect(index.add('vm-0')).toBe(0);
  });
});
