// The balancer run's fast paths answer exactly what the simple code they replace answers: a speed-up
// that changed one digit of a reason or one decision would fail here (and the golden fixtures).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmt, toFixed3 } from '../../../shared/domain/round-state.ts';

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

  it('is what fmt prints for a fraction, and fmt prints integers whole', () => {
    expect(fmt(1.23456)).toBe('1.235');
    expect(fmt(-0.0001)).toBe('-0.000');
    expect(fmt(12)).toBe('12');
    expect(fmt(-0)).toBe('0');
  });
});
