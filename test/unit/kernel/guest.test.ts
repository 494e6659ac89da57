import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeValue, encodeValue } from '../../../node-agent/kernel/guest.ts';

describe('encoding guest globals in an image', () => {
  it('round-trips every f64 bit for bit, NaN, -0 and infinities included', () => {
    fc.assert(
      fc.property(fc.double(), (x) => {
        expect(Object.is(decodeValue(encodeValue(x)), x)).toBe(true);
      }),
    );
    expect(Object.is(decodeValue(encodeValue(-0)), -0)).toBe(true);
  });

  it('round-trips i64 values as decimal strings', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (x) => {
        expect(decodeValue(encodeValue(x))).toBe(x);
      }),
    );
  });
});
