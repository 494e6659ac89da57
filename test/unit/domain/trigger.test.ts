import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { chooseTrigger, OVERLOAD_FACTOR, STRUCTURAL_RATIO } from '../../../shared/domain/trigger.ts';
import { aConfig, aNode, aRound, vmsOn } from './fixtures.ts';

const loads = (o: Record<string, number>) => new Map(Object.entries(o));

describe('chooseTrigger', () => {
  it('measures the spread as the CV and the noise as the RMS drift over the mean', () => {
    // Loads 1 and 3: mean 2, std 1, spread 0.5; drifts 1 and 0 from 0 and 3: RMS √0.5, over 2.
    const c = chooseTrigger({ trigger: 'auto' }, loads({ a: 1, b: 3 }), { a: 0, b: 3 });
    expect(c.spread).toBeCloseTo(0.5, 12);
    expect(c.noise).toBeCloseTo(Math.sqrt(0.5) / 2, 12);
  });

  it('compares only the nodes the previous round expected something of', () => {
    const c = chooseTrigger({ trigger: 'auto' }, loads({ a: 2, b: 2, c: 2 }), { a: 1 });
    expect(c.noise).toBeCloseTo(1 / 2, 12);
    expect(c.spread).toBe(0);
  });

  it('chooses difference with no earlier round, or when the spread outgrows the noise', () => {
    expect(chooseTrigger({ trigger: 'auto' }, loads({ a: 1, b: 3 }), undefined)).toMatchObject({
      trigger: 'difference',
      noise: undefined,
    });
    expect(chooseTrigger({ trigger: 'auto' }, loads({ a: 1, b: 3 }), {}).noise).toBeUndefined();
    expect(chooseTrigger({ trigger: 'auto' }, loads({ a: 1, b: 3 }), { a: 1, b: 3 }).trigger).toBe(
      'difference',
    );
  });

  it('chooses overload when the noise is as large as the spread, right at the ratio too', () => {
    // spread 0.5; noise exactly spread / STRUCTURAL_RATIO is not structural.
    const drift = (0.5 / STRUCTURAL_RATIO) * 2;
    const at = chooseTrigger({ trigger: 'auto' }, loads({ a: 1, b: 3 }), { a: 1 - drift, b: 3 + drift });
    expect(at.noise).toBeCloseTo(0.25, 12);
    expect(at.trigger).toBe('overload');
    const below = chooseTrigger({ trigger: 'auto' }, loads({ a: 1, b: 3 }), { a: 0.5, b: 3 });
    expect(below.trigger).toBe('difference');
  });

  it('keeps a configured trigger, and treats an absent one as difference', () => {
    const noisy = { a: 0, b: 0 };
    expect(chooseTrigger({ trigger: 'headroom' }, loads({ a: 1, b: 3 }), noisy).trigger).toBe('headroom');
    expect(chooseTrigger({ trigger: 'difference' }, loads({ a: 1, b: 3 }), noisy).trigger).toBe('difference');
    expect(chooseTrigger({}, loads({ a: 1, b: 3 }), noisy).trigger).toBe('difference');
  });

  it('says zero for an empty or idle cluster', () => {
    expect(chooseTrigger({ trigger: 'auto' }, loads({}), undefined)).toEqual({
      trigger: 'difference',
      spread: 0,
      noise: undefined,
    });
    // No load, no mean: nothing to measure noise against.
    expect(chooseTrigger({ trigger: 'auto' }, loads({ a: 0, b: 0 }), { a: 0, b: 0 })).toEqual({
      trigger: 'difference',
      spread: 0,
      noise: undefined,
    });
  });
});

describe('decideRound under noise (the overload trigger)', () => {
  const nodes = [aNode({ id: 'a', capacity: 10 }), aNode({ id: 'b', capacity: 10 })];
  const noisy = (a: number, b: number) => ({ a: a + 5, b: b - 5 });

  it('leaves a node at or below its capacity alone however uneven', () => {
    const d = decideRound(
      aRound(nodes, [...vmsOn('a', [5, 5]), ...vmsOn('b', [1])], { expected: noisy(10, 1) }),
      aConfig({ trigger: 'auto' }),
      createRng(1),
    );
    expect(d.trigger?.trigger).toBe('overload');
    expect(d.moves).toEqual([]);
    expect(d.pairs[0]?.reason.code).toBe('below-threshold');
  });

  it(`sheds only the load above capacity from a node above ${OVERLOAD_FACTOR} × capacity`, () => {
    const d = decideRound(
      aRound(nodes, [...vmsOn('a', [6, 3, 1, 1]), ...vmsOn('b', [1])], { expected: noisy(11, 1) }),
      aConfig({ trigger: 'auto' }),
      createRng(1),
    );
    expect(d.trigger?.trigger).toBe('overload');
    // a at 11 sheds 1 (down to 10), not 5 (to the mean of 6).
    expect(d.moves.map((m) => m.loadOnSource)).toEqual([1]);
    expect(d.pairs[0]?.predicted).toMatchObject({ requester: 10, selected: 2 });
  });
});
