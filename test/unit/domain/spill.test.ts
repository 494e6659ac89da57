// The spill of a far outlier (decide.ts `spill`), pinned: to whom it gives after its own exchange, in
// what order, how many, when it stops, and who meets whom afterwards. Every round here has an
// earlier one that expected today's loads (noise 0), so the imbalance counts as structural.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound, SPILL_PARTNERS } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, RoundDecision } from '../../../shared/domain/types.ts';
import { aNode, aRound, vmsOn } from './fixtures.ts';

/** Node `id` holds VMs of the given sizes; `full` nodes have no memory room beyond their own VMs. */
function round(
  nodes: [string, number[], { full?: boolean; pages?: number; inFlight?: number }?][],
  over: Partial<BalancingConfig> = {},
): RoundDecision {
  const input = aRound(
    nodes.map(([id, sizes, o]) =>
      aNode({ id, memCapacityPages: o?.pages ?? (o?.full ? 16 * sizes.length : 1_000_000) }),
    ),
    nodes.flatMap(([id, sizes]) => vmsOn(id, sizes)),
    {
      expected: Object.fromEntries(nodes.map(([id, sizes]) => [id, sizes.reduce((a, b) => a + b, 0)])),
      inFlight: Object.fromEntries(nodes.flatMap(([id, , o]) => (o?.inFlight ? [[id, o.inFlight]] : []))),
    },
  );
  const config = {
    ...DEFAULT_BALANCING_CONFIG,
    cooldownMs: 0,
    withRandom: false,
    maxMigrationsPerNode: 40,
    ...over,
  };
  return decideRound(input, config, createRng(1));
}

const summary = (d: RoundDecision) =>
  d.pairs.map((p) => `${p.requester}-${p.selected} ${p.reason.code} ${p.moves.length}`);

const twos = (n: number) => Array.from({ length: n }, () => 2);
const ones = (n: number) => Array.from({ length: n }, () => 1);

describe(`the spill of a far outlier (${SPILL_PARTNERS} further partners)`, () => {
  // hot (40: twenty 2s) and seven nodes of 1 to 7 (mean 8.5). Spread pairing: hot–c0, c6–c1, c5–c2,
  // c4–c3, all but the first idle (below the threshold or balanced).
  const cluster: [string, number[]][] = [
    ['hot', twos(20)],
    ...Array.from({ length: 7 }, (_, i): [string, number[]] => [`c${i}`, ones(i + 1)]),
  ];

  it('gives to the least loaded idle nodes below the mean, three at most, and pairs the nodes they leave', () => {
    // After c0, hot (32) gives to c1, c2 and c3 (26, 20, 16: still far above the mean, but the three
    // are spent). c6, c5 and c4 lost their partners: c6 and c5 meet, c4 is left over.
    expect(summary(round(cluster))).toEqual([
      'hot-c0 moved 4',
      'hot-c1 moved 3',
      'hot-c2 moved 3',
      'hot-c3 moved 2',
      'c6-c5 balanced 0',
    ]);
  });

  it('does not spill without a tolerance (threshold factor 1)', () => {
    expect(summary(round(cluster, { thresholdFactor: 1 }))).toEqual([
      'hot-c0 moved 4',
      'c6-c1 balanced 0',
      'c5-c2 balanced 0',
      'c4-c3 balanced 0',
    ]);
  });

  it('counts a partner that refuses, and gives to none twice', () => {
    // c1 has no memory room: tried and refused, it still counts, so c4 is never reached. c1 keeps its
    // pair with c6; c5 and c4, whose partners took from hot, meet.
    const d = round(cluster.map(([id, sizes]) => [id, sizes, { full: id === 'c1' }]));
    expect(summary(d)).toEqual([
      'hot-c0 moved 4',
      'c6-c1 balanced 0',
      'hot-c2 moved 3',
      'hot-c3 moved 2',
      'c5-c4 balanced 0',
    ]);
  });

  it('serves the more loaded of two givers first, and gives no taker to both', () => {
    // h1 (40) and h2 (30) each meet one of the four least loaded nodes; then h1 spills to the next
    // three least loaded, and h2 to the rest. Two nodes above the mean (10.6) and eight below: a
    // giver may stop four tolerances above it (see `sideTolerance`), so both stop at 14. The round
    // lists its exchanges by the imbalance each removes per migration (`byValue`): h1's single VM to
    // c4 removes less per migration than h2's exchange with c5, and more than h2's with c6.
    const d = round([
      ['h1', twos(20)],
      ['h2', twos(15)],
      ...Array.from({ length: 8 }, (_, i): [string, number[]] => [`c${i}`, ones(i + 1)]),
    ]);
    expect(summary(d)).toEqual([
      'h1-c0 moved 5',
      'h2-c1 moved 4',
      'h1-c2 moved 4',
      'h1-c3 moved 3',
      'h2-c5 moved 2',
      'h1-c4 moved 1',
      'h2-c6 moved 2',
    ]);
    const takers = d.moves.map((m) => m.to);
    for (const t of new Set(takers))
      expect(new Set(d.moves.filter((m) => m.to === t).map((m) => m.from)).size).toBe(1);
  });

  it('serves the givers by their load after their own exchange, not by their pair’s gap', () => {
    // h1 (40) meets c0 (1), the widest pair, and gives it 10 (30 left); h2 (36) meets c1 (2), which
    // has memory room for one VM only, and gives 2 (34 left). h2 is now the more loaded: it spills
    // first, to c2, c3 and c4; h1 gets the next three. (Sorted: the order the exchanges are carried
    // out in is byValue's, pinned in fit-taker.test.ts; who serves whom is this test's point.)
    const d = round([
      ['h1', twos(20)],
      ['h2', twos(18)],
      ...Array.from({ length: 8 }, (_, i): [string, number[], { pages?: number }] => [
        `c${i}`,
        ones(i + 1),
        { pages: i === 1 ? 16 * 3 : 1_000_000 },
      ]),
    ]);
    expect(summary(d).sort()).toEqual([
      'h1-c0 moved 5',
      'h1-c5 moved 3',
      'h1-c6 moved 2',
      'h1-c7 moved 2',
      'h2-c1 moved 1',
      'h2-c2 moved 4',
      'h2-c3 moved 4',
      'h2-c4 moved 3',
    ]);
  });

  it('stops at a node already at the mean', () => {
    // hot (26: thirteen 2s), a and b (2 each), m (10) = the mean. b may take one VM more (7 in flight);
    // after a, hot (16) is still above the mean, but the next idle node, m, is at it.
    const d = round(
      [
        ['hot', twos(13)],
        ['a', [1, 1]],
        ['b', [1, 1], { inFlight: 7 }],
        ['m', [10]],
      ],
      { maxMigrationsPerNode: 8 },
    );
    expect(summary(d)).toEqual(['hot-b moved 1', 'hot-a moved 4']);
  });
});

describe('the spill stops once the giver is within the tolerance of the mean', () => {
  // Fewer than eight VMs per giver: its exchanges aim exactly, so only the spill's own stop keeps it
  // from giving on (threshold factor 1.05: a tolerance of 0.1 × the mean).
  it('stops after the exchange that brings the giver within it', () => {
    // 17, 11, 9 and 4 (mean 10.25, tolerance 1.025): n0 gives n3 6 (11 / 10), within the tolerance, so
    // n2 (9, below the mean) keeps its own pair with n1.
    const d = round([
      ['n0', [1, 4, 1, 2, 4, 2, 3]],
      ['n1', [4, 4, 3]],
      ['n2', [1, 2, 2, 4]],
      ['n3', [4]],
    ]);
    expect(summary(d)).toEqual(['n0-n3 moved 2', 'n1-n2 no-gain 0']);
  });

  it('stops with the giver exactly at the mean plus the tolerance', () => {
    // 24, 9, 2 and 5 (mean 10, tolerance 1): after n2 and n3, n0 is at 11 and does not meet n1.
    const d = round([
      ['n0', [3, 2, 1, 3, 1, 4, 4, 2, 4]],
      ['n1', [3, 2, 1, 3]],
      ['n2', [2]],
      ['n3', [3, 2]],
    ]);
    expect(summary(d)).toEqual(['n0-n2 moved 2', 'n0-n3 moved 2']);
    expect(d.expected).toMatchObject({ n0: 11, n1: 9 });
  });

  it('stops with the giver exactly at the mean plus its side’s tolerance, in exact arithmetic', () => {
    // 60 (ten 6s), 0, 17 and 19: mean 24, tolerance 2 × 0.125 × 24 = 6 (threshold factor 1.125, every
    // figure exact in binary). One node above the mean and three below: the giver may stop three
    // tolerances above it, at 42. n0 gives n1 three 6s and lands on 42 exactly: it spills no further,
    // though n2 could take a 6; n2 keeps its pair with n3.
    const d = round(
      [
        ['n0', Array.from({ length: 10 }, () => 6)],
        ['n1', []],
        ['n2', [5, 6, 6]],
        ['n3', [6, 6, 6, 1]],
      ],
      { thresholdFactor: 1.125 },
    );
    expect(summary(d)).toEqual(['n0-n1 moved 3', 'n3-n2 below-threshold 0']);
    expect(d.expected).toEqual({ n0: 42, n1: 18, n2: 17, n3: 19 });
  });
});
