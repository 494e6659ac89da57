// A round's decisions and moves are made by `plainMaker` (so that V8 does not pretenure them), yet
// they must stay plain objects: the run record is stored through the DynamoDB document client, whose
// marshall refuses any object whose constructor is not Object (the store path itself is exercised by
// test/integration/balancer.test.ts), and tests and the API compare them as plain data.
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { plainMaker } from '../../../shared/domain/plain.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { aConfig, aNode, aRound, vmsOn } from './fixtures.ts';

const isPlain = (x: unknown) => Object.getPrototypeOf(x) === Object.prototype;

describe('plainMaker', () => {
  it('makes objects with Object as prototype and constructor, fields in the order set', () => {
    const PairOf = plainMaker(function (this: { a: number; b: string }, a: number, b: string) {
      this.a = a;
      this.b = b;
    });
    const pair = new PairOf(1, 'x');
    expect(isPlain(pair)).toBe(true);
    expect(pair.constructor).toBe(Object);
    expect(Object.keys(pair)).toEqual(['a', 'b']);
    expect(pair).toStrictEqual({ a: 1, b: 'x' });
  });
});

describe("a round's results", () => {
  it('are plain objects, keys in the order a literal would give them', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [0.3, 0.3, 0.2, 0.2]), ...vmsOn('b', [0.05])],
    );
    const round = decideRound(input, aConfig({ pairing: 'round-robin' }), createRng(1));
    const moved = round.pairs.find((p) => p.moves.length > 0);
    expect(moved).toBeDefined();
    const pair = moved as NonNullable<typeof moved>;
    for (const x of [pair, pair.loads, pair.predicted, ...pair.moves]) {
      expect(isPlain(x)).toBe(true);
      expect(x.constructor.name).toBe('Object');
    }
    expect(Object.keys(pair)).toEqual(['requester', 'selected', 'loads', 'moves', 'reason', 'predicted']);
    expect(Object.keys(pair.moves[0] as object)).toEqual([
      'vm',
      'from',
      'to',
      'loadOnSource',
      'loadOnTarget',
    ]);
    expect(JSON.parse(JSON.stringify(round.pairs))).toStrictEqual(round.pairs);
  });
});
