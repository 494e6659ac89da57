// mirrorStalled (shared/domain/mirror.ts) on small stalled shards, pinned one by one: when it looks for
// a mirror at all, which two nodes trade what, the law on the trade, what it must open for the most
// loaded node, and how the pairs it breaks up are paired again.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { closeExchange, openExchange, stepExchange } from '../../../shared/domain/exchange.ts';
import { MIRROR_NODES, MIRROR_VMS, mirrorStalled } from '../../../shared/domain/mirror.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { prepareRound, type RoundState } from '../../../shared/domain/round-state.ts';
import type { BalancingConfig, PairDecision, RoundInput } from '../../../shared/domain/types.ts';
import { aNode, aRound, aVm, vmsOn } from './fixtures.ts';

const config: BalancingConfig = { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0, trigger: 'difference' };

interface Shard {
  /** Node `n<i>` holds VMs of the sizes placement[i] (CPU factor; load = size × the node's CPU weight). */
  placement: number[][];
  /** The CPU weight of each node (default 1). */
  weights?: number[];
  inFlight?: Record<string, number>;
  /** Nodes whose VMs are all pinned. */
  pinned?: number[];
  /** Nodes that hold one more VM, pinned and of no load: it counts only towards MIRROR_VMS. */
  extra?: number[];
}

function inputOf({ placement, weights, inFlight = {}, pinned = [], extra = [] }: Shard): RoundInput {
  const nodes = placement.map((_, i) =>
    aNode({ id: `n${i}`, weights: { cpu: weights?.[i] ?? 1, io: 0, mem: 0 } }),
  );
  return aRound(
    nodes,
    [
      ...placement.flatMap((sizes, i) => vmsOn(`n${i}`, sizes, { pinned: pinned.includes(i) })),
      ...extra.map((i) => aVm({ id: `n${i}-pinned`, node: `n${i}`, load: 0, pinned: true })),
    ],
    { inFlight },
  );
}

/** One pair's exchange as the round makes it (open, step until done, close). */
function decide(state: RoundState, a: string, b: string): PairDecision {
  const ex = openExchange(state, a, b);
  if ('reason' in ex) return ex;
  while (stepExchange(state, ex)) {}
  return closeExchange(state, ex);
}

/**
 * The shard's pairs decided in the given order (requester first), then mirrorStalled under `over`;
 * `decided` may rewrite the decisions first. Every call of its `decide` is recorded.
 */
function run(
  shard: Shard,
  pairs: [string, string][],
  over: Partial<BalancingConfig> = {},
  decided: (ds: PairDecision[], state: RoundState) => PairDecision[] = (ds) => ds,
) {
  const input = inputOf(shard);
  const state = prepareRound(input, { ...config, ...over });
  const decisions = decided(
    pairs.map(([a, b]) => decide(state, a, b)),
    state,
  );
  const calls: string[] = [];
  const out = mirrorStalled(state, decisions, (a, b) => {
    calls.push(`${a}-${b}`);
    return decide(state, a, b);
  });
  const mirror = out.find((d) => d.reason.detail.startsWith('mirror:'));
  return { input, state, decisions, out, calls, mirror, detail: mirror?.reason.detail };
}

const tail = ', so the most loaded node can improve next';

/** The pair's maximum does not rise and its gap does not grow (each load under its own node's weights). */
function keepsLaw(d: PairDecision) {
  const { loads, predicted } = d;
  expect(Math.max(predicted.requester, predicted.selected)).toBeLessThanOrEqual(
    Math.max(loads.requester, loads.selected) + 1e-9,
  );
  expect(Math.abs(predicted.requester - predicted.selected)).toBeLessThanOrEqual(
    Math.abs(loads.requester - loads.selected) + 1e-9,
  );
}

/** The exchange of `top` with `z` in the next round, once the mirror's moves are made. */
function nextExchange(shard: Shard, mirror: PairDecision, top: string, z: string): PairDecision {
  const input = inputOf(shard);
  const to = new Map(mirror.moves.map((m) => [m.vm, m.to]));
  const vms = input.vms.map((vm) => ({ ...vm, node: to.get(vm.id) ?? vm.node }));
  return decide(prepareRound({ ...input, vms }, config), top, z);
}

/** Every node of the shard is in exactly one decision. */
function eachNodeOnce(out: PairDecision[], nodes: number) {
  const ids = out.flatMap((d) => [d.requester, d.selected]).sort();
  expect(ids).toEqual(Array.from({ length: nodes }, (_, i) => `n${i}`).sort());
}

// n2 (12: 7 5) is stalled with n1 (7); n0 (10: 3 5 2) has nothing to do with n3 (9). n0 can give n3
// nothing that keeps their maximum at 10, but gives n1 its 3 (10 / 7 → 7 / 10): n2 can then swap its
// 7 for n0's 5 (12 / 7 → 10 / 9), both below 12.
const stalled: Shard = { placement: [[3, 5, 2], [7], [7, 5], [9]] };
const stalledPairs: [string, string][] = [
  ['n2', 'n1'],
  ['n0', 'n3'],
];
const stalledMirror = `mirror: n0 gave n0-0 (3) for nothing of n1: 10/7 → 7/10${tail}`;

describe('a mirror in a stalled shard', () => {
  it('lets two other nodes trade places, and pairs the nodes they leave with each other', () => {
    const { decisions, out, calls, mirror } = run(stalled, stalledPairs);
    expect(decisions.map((d) => d.reason.code)).toEqual(['no-gain', 'no-gain']);
    expect(mirror?.reason).toEqual({ code: 'moved', detail: stalledMirror });
    expect(mirror?.moves).toEqual([{ vm: 'n0-0', from: 'n0', to: 'n1', loadOnSource: 3, loadOnTarget: 3 }]);
    keepsLaw(mirror as PairDecision);
    // The mirror comes first; n2 and n3, whose partners it took, meet each other.
    expect(out.map((d) => [d.requester, d.selected])).toEqual([
      ['n0', 'n1'],
      ['n2', 'n3'],
    ]);
    expect(calls).toEqual(['n2-n3']);
    // n2 can now swap its 7 for n0's 5 (the exchange of the next round): 12 / 7 → 10 / 9.
    const next = nextExchange(stalled, mirror as PairDecision, 'n2', 'n0');
    expect(next.moves.map((m) => m.vm).sort()).toEqual(['n0-1', 'n2-0']);
    expect(next.predicted).toEqual({ requester: 10, selected: 9 });
  });

  it('finds the same whichever way round the pairs are listed', () => {
    // The most loaded node second in the list, and the selected node of its pair.
    const { mirror } = run(stalled, [
      ['n0', 'n3'],
      ['n1', 'n2'],
    ]);
    expect(mirror?.reason.detail).toBe(stalledMirror);
  });

  it('is sought only with several VMs per exchange, under the difference trigger', () => {
    const single = run(stalled, stalledPairs, { multiVm: false });
    expect(single.out).toBe(single.decisions);
    expect(single.mirror).toBeUndefined();
    // The same stalled pairs in a round whose trigger is headroom (as `auto` may choose).
    const headroom = run(stalled, stalledPairs, {}, (ds, state) => {
      state.trigger = { ...state.trigger, trigger: 'headroom' };
      return ds;
    });
    expect(headroom.out).toBe(headroom.decisions);
  });

  it('is not sought once a pair of the shard moved', () => {
    const { out, decisions } = run(stalled, stalledPairs, {}, (ds) => {
      const [top, other] = ds as [PairDecision, PairDecision];
      const move = { vm: 'n3-0', from: 'n3', to: 'n0', loadOnSource: 9, loadOnTarget: 9 };
      return [top, { ...other, moves: [move] }];
    });
    expect(out).toBe(decisions);
  });

  it('is sought only when the most loaded node’s own pair found no gain', () => {
    // Its pair stopped at a limit instead; the other pair's no-gain does not count.
    const { out, decisions } = run(stalled, stalledPairs, {}, (ds) => {
      const [top, other] = ds as [PairDecision, PairDecision];
      return [{ ...top, reason: { code: 'limit', detail: 'limit' } }, other];
    });
    expect(decisions[1]?.reason.code).toBe('no-gain');
    expect(out).toBe(decisions);
  });

  it(`is sought in shards of up to ${MIRROR_NODES} nodes`, () => {
    // Pinned nodes just below n2 can neither give nor take in a mirror: the same mirror as before.
    const withIdle = (extra: number): Shard => ({
      placement: [...stalled.placement, ...Array.from({ length: extra }, () => [11])],
      pinned: Array.from({ length: extra }, (_, i) => 4 + i),
    });
    const idlePairs = (extra: number): [string, string][] =>
      Array.from({ length: extra / 2 }, (_, i) => [`n${4 + 2 * i}`, `n${5 + 2 * i}`]);
    const eight = run(withIdle(4), [...stalledPairs, ...idlePairs(4)]);
    expect(eight.mirror?.reason.detail).toBe(stalledMirror);
    const ten = run(withIdle(6), [...stalledPairs, ...idlePairs(6)]);
    expect(ten.out).toBe(ten.decisions);
  });

  it('is not sought in a shard without pairs', () => {
    const state = prepareRound(inputOf({ placement: [[5, 5]] }), config);
    expect(mirrorStalled(state, [], () => expect.unreachable())).toEqual([]);
    expect(decideRound(inputOf({ placement: [[5, 5]] }), config, createRng(1)).pairs).toEqual([]);
  });
});

interface Pinned {
  name: string;
  shard: Shard;
  pairs: [string, string][];
  /** The mirror's detail, and the nodes that meet again after it. */
  mirror: string;
  regrouped: string[];
  /** The most loaded node's exchange in the next round, with one of the two, once the mirror is made. */
  next?: [string, string, string];
}

const pinned: Pinned[] = [
  {
    // n0 (14: 5 5 4) and n1 (11: 2 6 3) trade a 5 for a 2. They were each other's partners, so nobody
    // is left without one.
    name: 'one for one, between the two nodes of one pair',
    shard: { placement: [[5, 5, 4], [2, 6, 3], [7, 9], [9]] },
    pairs: [
      ['n2', 'n3'],
      ['n0', 'n1'],
    ],
    mirror: 'mirror: n0 gave n0-0 (5) for n1-0 (2) of n1: 14/11 → 11/14',
    regrouped: [],
    next: ['n2', 'n0', 'no single VM helps, so n2 and n0 swapped n2-0 (7) for n0-1 (5): 16/11 → 14/13'],
  },
  {
    // n1 (10: 5 5) gives both its 5s for n2's 9 (9 / 10).
    name: 'two for one (three migrations)',
    shard: { placement: [[6, 3], [5, 5], [9], [8, 9]] },
    pairs: [
      ['n3', 'n2'],
      ['n1', 'n0'],
    ],
    mirror: 'mirror: n1 gave n1-0 (5) and n1-1 (5) for n2-0 (9) of n2: 10/9 → 9/10',
    regrouped: ['n3-n0'],
    next: ['n3', 'n2', 'no single VM helps, so n3 and n2 swapped n3-0 (8) for n1-0 (5): 17/10 → 14/13'],
  },
  {
    // n0 (13: 9 4) is stalled with n1 (12). n2 (12: 3 5 4) gives its 5 for n3's 2 and 2 (12 / 11 →
    // 11 / 12); n0 can then swap its 4 for n2's 3, a taker below the mean (11.5) as a swap needs.
    name: 'one for two (three migrations)',
    shard: {
      placement: [
        [9, 4],
        [4, 8],
        [3, 5, 4],
        [7, 2, 2],
      ],
    },
    pairs: [
      ['n2', 'n3'],
      ['n0', 'n1'],
    ],
    mirror: 'mirror: n2 gave n2-1 (5) for n3-1 (2) and n3-2 (2) of n3: 12/11 → 11/12',
    regrouped: [],
    next: ['n0', 'n2', 'no single VM helps, so n0 and n2 swapped n0-1 (4) for n2-0 (3): 13/11 → 12/12'],
  },
  {
    // n3 (13: 4 4 5) is stalled. n0 (12: 8 3 1) gives its 1 to n1 (10), 11 / 11; n3 can then swap a 4
    // for n0's 3.
    name: 'one for none',
    shard: {
      placement: [
        [8, 3, 1],
        [5, 5],
        [9, 3],
        [4, 4, 5],
      ],
    },
    pairs: [
      ['n0', 'n1'],
      ['n3', 'n2'],
    ],
    mirror: 'mirror: n0 gave n0-2 (1) for nothing of n1: 12/10 → 11/11',
    regrouped: [],
    next: ['n3', 'n0', 'no single VM helps, so n3 and n0 swapped n3-0 (4) for n0-1 (3): 13/11 → 12/12'],
  },
];

describe('pinned mirrors', () => {
  it.each(pinned)('$name', ({ shard, pairs, mirror: detail, regrouped, next }) => {
    const { out, calls, mirror } = run(shard, pairs);
    expect(mirror?.reason.detail).toBe(detail + tail);
    keepsLaw(mirror as PairDecision);
    eachNodeOnce(out, shard.placement.length);
    expect(calls).toEqual(regrouped);
    if (next)
      expect(nextExchange(shard, mirror as PairDecision, next[0], next[1]).reason.detail).toBe(next[2]);
  });
});

describe('mirrors that would lower nothing', () => {
  it('are not made while several nodes share the maximum', () => {
    // Three nodes at 10 (the optimum). Unlocking one of them lowers no maximum: n2 and n0 used to
    // trade a 3 for a 1, and the next round's mirror traded on, forever.
    const { out, decisions } = run(
      {
        placement: [
          [1, 1, 6],
          [2, 8],
          [3, 7],
          [4, 6],
        ],
      },
      [
        ['n1', 'n0'],
        ['n2', 'n3'],
      ],
    );
    expect(decisions[0]?.reason.code).toBe('no-gain');
    expect(out).toBe(decisions);
  });
});

describe('what a mirror may cost', () => {
  it('trades one for one only with room for two migrations on both nodes', () => {
    // n3 (11: 3 3 5) and n2 (9: 8 1) trade a 3 for the 1 (9 / 11); n0 (13: 5 8) could then swap its 5
    // for n3's 3.
    const shard = (inFlight: number): Shard => ({
      placement: [[5, 8], [9], [8, 1], [3, 3, 5]],
      inFlight: { n2: inFlight },
    });
    const pairs: [string, string][] = [
      ['n3', 'n2'],
      ['n0', 'n1'],
    ];
    const roomy = run(shard(6), pairs);
    expect(roomy.mirror?.reason.detail).toBe(
      `mirror: n3 gave n3-0 (3) for n2-1 (1) of n2: 11/9 → 9/11${tail}`,
    );
    const tight = run(shard(7), pairs);
    expect(tight.out).toBe(tight.decisions);
  });

  it('trades one for two only with room for three', () => {
    const shard = (inFlight: number): Shard => ({
      placement: [
        [9, 4],
        [4, 8],
        [3, 5, 4],
        [7, 2, 2],
      ],
      inFlight: { n3: inFlight },
    });
    const pairs: [string, string][] = [
      ['n2', 'n3'],
      ['n0', 'n1'],
    ];
    expect(run(shard(5), pairs).mirror?.reason.detail).toBe(
      `mirror: n2 gave n2-1 (5) for n3-1 (2) and n3-2 (2) of n3: 12/11 → 11/12${tail}`,
    );
    const tight = run(shard(6), pairs);
    expect(tight.out).toBe(tight.decisions);
  });

  it('trades two for one only within the cluster limit', () => {
    const shard: Shard = { placement: [[6, 3], [5, 5], [9], [8, 9]] };
    const pairs: [string, string][] = [
      ['n3', 'n2'],
      ['n1', 'n0'],
    ];
    const three = run(shard, pairs, { maxMigrationsPerCluster: 3 });
    expect(three.mirror?.moves).toHaveLength(3);
    // The mirror spent the cluster's three migrations: the nodes it left alone meet, and stop there.
    expect(three.out[1]?.reason.code).toBe('limit');
    const two = run(shard, pairs, { maxMigrationsPerCluster: 2 });
    expect(two.out).toBe(two.decisions);
  });

  const ones = Array.from({ length: MIRROR_VMS }, () => 1);
  const limits: [string, Shard, [string, string][], number, string, string][] = [
    [
      // n2, twelve VMs of 1, gives two of them for n3's 3 (13 / 12 → 12 / 13); with a thirteenth VM it
      // is left out, and n3 gives its 3 to n1 instead.
      'the less loaded',
      { placement: [[6, 9], [9], ones, [5, 3, 5]] },
      [
        ['n3', 'n2'],
        ['n0', 'n1'],
      ],
      2,
      'mirror: n3 gave n3-1 (3) for n2-0 (1) and n2-1 (1) of n2: 13/12 → 12/13',
      'mirror: n3 gave n3-1 (3) for nothing of n1: 13/9 → 10/12',
    ],
    [
      // n3, twelve VMs of 1, gives a 1 to n1 (12 / 10 → 11 / 11); with a thirteenth VM it is left out,
      // and n1 and n0 trade instead.
      'the more loaded',
      { placement: [[9], [4, 6], [7, 7], ones] },
      [
        ['n2', 'n0'],
        ['n3', 'n1'],
      ],
      3,
      'mirror: n3 gave n3-0 (1) for nothing of n1: 12/10 → 11/11',
      'mirror: n1 gave n1-0 (4) and n1-1 (6) for n0-0 (9) of n0: 10/9 → 9/10',
    ],
  ];

  it.each(limits)(
    `tries %s of the two only with at most ${MIRROR_VMS} VMs`,
    (_, shard, pairs, node, within, without) => {
      expect(run(shard, pairs).detail).toBe(within + tail);
      expect(run({ ...shard, extra: [node] }, pairs).detail).toBe(without + tail);
    },
  );
});

describe('mirrors across nodes of different weights', () => {
  it('never widen the pair’s gap', () => {
    // n3 (weight 2) holds a VM of CPU 3 (load 6); n1 (weight 0.5) holds a 6 (load 3). Passing the 3 to
    // n1, where it weighs 1.5, keeps the maximum (6 / 3 → 0 / 4.5) but widens the gap: no mirror.
    const { out, decisions } = run({ placement: [[], [6], [7], [3]], weights: [1, 0.5, 1, 2] }, [
      ['n2', 'n0'],
      ['n1', 'n3'],
    ]);
    expect(out).toBe(decisions);
  });

  it('never raise the pair’s maximum', () => {
    // n3 (weight 0.5: 5 and 2, load 3.5) could pass its 2 to the empty n2 (weight 2), where it weighs
    // 4: 3.5 / 0 → 2.5 / 4 raises the pair's maximum, so it is no mirror (nor is anything else here).
    const { out, decisions } = run(
      { placement: [[], [7], [], [5, 2]], weights: [2, 1, 2, 0.5] },
      [
        ['n2', 'n1'],
        ['n0', 'n3'],
      ],
      { maxMigrationsPerCluster: 4 },
    );
    expect(out).toBe(decisions);
  });

  it('count only an exchange that leaves the most loaded node and its partner below its load', () => {
    // n1 (weight 0.5) holds two VMs of CPU 9 (load 9). On n0 or n2 (weight 1) either weighs 9: moving
    // one would improve that pair (9 / 3 → 4.5 / 12 no; 9 / 0 → 4.5 / 9 yes), yet not lower the
    // shard's maximum. So n0 passing its 3 to n2 (3 / 0 → 0 / 3) opens nothing: no mirror.
    const { out, decisions } = run({ placement: [[3], [9, 9], [], []], weights: [1, 0.5, 1, 2] }, [
      ['n3', 'n1'],
      ['n2', 'n0'],
    ]);
    expect(decisions[0]?.reason.code).toBe('no-gain');
    expect(out).toBe(decisions);
  });
});
