// A round's assembly: who is left out and why, the order the pairs are served in, the retry of a
// stalled giver with another partner, and the loads the round expects.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound, RETRY_PARTNERS } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, RoundDecision, RoundInput } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, vmsOn } from './fixtures.ts';

const defaults = (input: RoundInput, over: Partial<BalancingConfig> = {}) =>
  decideRound(input, { ...DEFAULT_BALANCING_CONFIG, withRandom: false, ...over }, createRng(1));

const pairs = (d: RoundDecision) =>
  d.pairs.map((p) => [[p.requester, p.selected].sort().join('|'), p.reason.code, p.moves.map((m) => m.vm)]);

const cluster = (loads: number[][]) =>
  aRound(
    loads.map((_, i) => aNode({ id: `n${i}` })),
    loads.flatMap((l, i) => vmsOn(`n${i}`, l)),
  );

describe('who takes part in a round', () => {
  it('leaves out a node whose in-flight migrations fill its limit, saying how many', () => {
    const input = aRound([aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c' })], vmsOn('a', [5, 5]), {
      inFlight: { b: 3 },
    });
    const d = decideRound(input, aConfig({ maxMigrationsPerNode: 3 }), createRng(1));
    expect(d.skipped).toEqual([{ node: 'b', reason: 'limit: 3 migration(s) already in flight' }]);
    expect(d.pairs.map((p) => [p.requester, p.selected].sort())).toEqual([['a', 'c']]);
  });
});

describe('the retry of a stalled giver', () => {
  // n0 3 + 2, n1 5, n2 4, n3 empty. Spread pairing meets n1 with n3 and n0 with n2: n1's single 5
  // would only mirror the gap, and n0 cannot help n2. n1 tries n2 (no better); n0 then gives its 2 to
  // n3, and the two nodes left without a partner, n1 and n2, meet each other.
  const stalled = () => cluster([[3, 2], [5], [4], []]);

  it('finds a partner that takes something, and pairs the two nodes it leaves alone', () => {
    const d = defaults(stalled());
    expect(pairs(d)).toEqual([
      ['n0|n3', 'moved', ['n0-1']],
      ['n1|n2', 'no-gain', []],
    ]);
    expect(d.expected).toEqual({ n0: 3, n1: 5, n2: 4, n3: 2 });
  });

  it(`tries at most ${RETRY_PARTNERS} other partners, each less loaded than the giver`, () => {
    // n0 (a single VM of 10) stalls against anyone; the nodes it could try all carry less.
    const d = defaults(cluster([[10], [1], [1], [1], [1], [1]]));
    expect(d.moves).toEqual([]);
    for (const p of d.pairs) expect(p.moves).toEqual([]);
    // Every node stays in exactly one decision.
    const nodes = d.pairs.flatMap((p) => [p.requester, p.selected]).sort();
    expect(nodes).toEqual([...new Set(nodes)]);
  });
});

describe('the loads a round expects', () => {
  it('are every node’s load once the moves are made, draining and skipped nodes included', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'd', draining: true }), aNode({ id: 's' })],
      [...vmsOn('a', [10, 20, 45, 45]), ...vmsOn('b', [80]), ...vmsOn('d', [7]), ...vmsOn('s', [3])],
      { inFlight: { s: 8 } },
    );
    const d = decideRound(input, aConfig({ aim: 'pair', multiVm: false }), createRng(1));
    // a and b even out at 100; d's 7 goes to the least loaded node that may receive, then a at 100.
    expect(d.expected).toEqual({ a: 107, b: 100, d: 0, s: 3 });
  });
});
