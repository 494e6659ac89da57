// One pair's exchange on small pinned clusters: who gives, how much, when it stops, when it swaps,
// and what each decision says to the operator.
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type {
  BalancingConfig,
  NodeInfo,
  PairDecision,
  RoundDecision,
  RoundInput,
  Weights,
} from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, vmsOn } from './fixtures.ts';

const decide = (input: RoundInput, config: Partial<BalancingConfig> = {}) =>
  decideRound(input, aConfig({ trigger: 'difference', ...config }), createRng(1));

/** Nodes a and b with VMs of the given loads (b may get other weights). */
const twoNodes = (a: number[], b: number[], over: { a?: Partial<NodeInfo>; b?: Partial<NodeInfo> } = {}) =>
  aRound(
    [aNode({ id: 'a', ...over.a }), aNode({ id: 'b', ...over.b })],
    [...vmsOn('a', a), ...vmsOn('b', b)],
  );

/** Both nodes of `twoNodes` at capacity 100, and the headroom trigger at 80 % of it. */
const CAPACITY_100 = { a: { capacity: 100 }, b: { capacity: 100 } };
const HEADROOM_80: Partial<BalancingConfig> = { trigger: 'headroom', highThreshold: 0.8 };

const pairOf = (d: RoundDecision, x: string, y: string): PairDecision => {
  const p = d.pairs.find((q) => [q.requester, q.selected].sort().join() === [x, y].sort().join());
  if (!p) throw new Error(`no pair ${x}/${y} in ${JSON.stringify(d.pairs)}`);
  return p;
};

/** The reason of the pair a/b at capacity 100 under the headroom trigger at 80 %. */
const headroomReason = (a: number[], b: number[]) =>
  pairOf(decide(twoNodes(a, b, CAPACITY_100), HEADROOM_80), 'a', 'b').reason;

describe('an exchange that does not start', () => {
  it('says the difference is within the threshold factor and margin', () => {
    const p = pairOf(decide(twoNodes([105], [100]), { thresholdFactor: 1.1, margin: 2 }), 'a', 'b');
    expect(p.reason.code).toBe('below-threshold');
    const [r, s] = p.requester === 'a' ? [105, 100] : [100, 105];
    expect(p.reason.detail).toBe(`${r} vs ${s}: the difference is within factor 1.1 / margin 2`);
  });

  it('says balanced, with the load, when the two loads are equal', () => {
    const p = pairOf(decide(twoNodes([2.5, 2.5], [5])), 'a', 'b');
    expect(p.reason).toEqual({
      code: 'balanced',
      detail: `${p.requester} and ${p.selected} carry the same load (5)`,
    });
  });

  it('formats fractional loads to three decimals', () => {
    const p = pairOf(decide(twoNodes([0.5], [0.25]), { thresholdFactor: 3 }), 'a', 'b');
    expect(p.reason.detail).toMatch(/^(0\.500 vs 0\.250|0\.250 vs 0\.500): /);
  });

  it('names the heavier node under push-only when only the lighter one may give', () => {
    const input = twoNodes([80], [10, 20, 45, 45]);
    const d = decide(input, { direction: 'push-only', pairing: 'round-robin' });
    const p = pairOf(d, 'a', 'b');
    expect(d.moves).toEqual([]);
    expect(p.reason).toEqual({
      code: 'push-only',
      detail: 'b (120) exceeds a (80) but only the requester may give',
    });
    expect(p.requester).toBe('a');
  });

  it('leaves a giver with headroom alone under the headroom trigger, and says how much', () => {
    expect(headroomReason([70], [10])).toEqual({
      code: 'below-threshold',
      detail: 'a (70) has headroom below 0.8 of its capacity 100',
    });
  });

  it('acts under the headroom trigger once the giver is past the threshold', () => {
    const input = twoNodes([50, 31], [10], CAPACITY_100);
    expect(decide(input, HEADROOM_80).moves.map((m) => m.vm)).toEqual(['a-1']);
  });

  it('leaves a giver exactly at the headroom threshold alone', () => {
    const input = twoNodes([80], [0], CAPACITY_100);
    expect(decide(input, HEADROOM_80).moves).toEqual([]);
    // Even with a VM that would even the pair out.
    expect(decide(twoNodes([40, 40], [0], CAPACITY_100), HEADROOM_80).moves).toEqual([]);
  });

  it('fills the taker only up to the headroom threshold', () => {
    // a 95 (VMs of 2.5), b 70: b may take 10 of the 12.5 that would even the pair.
    const input = twoNodes(Array(38).fill(2.5), [70], CAPACITY_100);
    const d = decide(input, { ...HEADROOM_80, aim: 'pair' });
    expect(d.expected).toEqual({ a: 85, b: 80 });
  });

  it('ignores the headroom threshold under the difference trigger', () => {
    const input = twoNodes([90, 9], [81], CAPACITY_100);
    expect(decide(input, { trigger: 'difference', highThreshold: 0.8 }).expected).toEqual({ a: 90, b: 90 });
  });

  it('needs nothing when the taker is already at its headroom threshold', () => {
    // a (95) is over 80 % of its capacity, but b (85) is too: b may take nothing.
    expect(headroomReason([95], [85])).toEqual({
      code: 'balanced',
      detail: 'a (95) and b (85) need nothing to reach the aim (mean 90)',
    });
  });

  it('leaves a giver that is not overloaded alone when auto measures noise, and says so', () => {
    // Each load moved 20 from what the last round expected (noise 0.25) against a spread of 0.125.
    const input = aRound(
      [aNode({ id: 'a', capacity: 100 }), aNode({ id: 'b', capacity: 100 })],
      [...vmsOn('a', [90]), ...vmsOn('b', [70])],
      { expected: { a: 70, b: 90 } },
    );
    const d = decide(input, { trigger: 'auto' });
    expect(d.trigger?.trigger).toBe('overload');
    expect(pairOf(d, 'a', 'b').reason).toEqual({
      code: 'below-threshold',
      detail: 'a (90) is not overloaded (capacity 100) and the loads are noisy (spread 0.125, noise 0.250)',
    });
  });

  it('acts under the overload trigger only above 1.05 times the capacity', () => {
    const at = (load: number) =>
      decide(
        aRound(
          [aNode({ id: 'a', capacity: 100 }), aNode({ id: 'b', capacity: 100 })],
          [...vmsOn('a', [load - 10, 10]), ...vmsOn('b', [30])],
          { expected: { a: load + 60, b: 90 } },
        ),
        { trigger: 'auto' },
      );
    expect(at(105).trigger?.trigger).toBe('overload');
    expect(at(105).moves).toEqual([]);
    expect(at(106).trigger?.trigger).toBe('overload');
    expect(at(106).moves.map((m) => m.vm)).toEqual(['a-1']);
  });

  it('sheds under the overload trigger no more than the taker can hold below its capacity', () => {
    // a 130 and b 90 (capacity 100 each), noisy: b may take 10 of the 30 above a's capacity.
    const input = aRound(
      [aNode({ id: 'a', capacity: 100 }), aNode({ id: 'b', capacity: 100 })],
      [...vmsOn('a', Array(26).fill(5)), ...vmsOn('b', [90])],
      { expected: { a: 90, b: 130 } },
    );
    const d = decide(input, { trigger: 'auto' });
    expect(d.trigger?.trigger).toBe('overload');
    expect(d.expected).toEqual({ a: 120, b: 100 });
  });

  it('says the cluster limit is reached when migrations in flight fill it', () => {
    const input = { ...twoNodes([10, 10], []), inFlight: { a: 1, b: 1 } };
    const p = pairOf(decide(input, { maxMigrationsPerCluster: 2 }), 'a', 'b');
    expect(p.reason).toEqual({ code: 'limit', detail: 'cluster limit of 2 migrations reached' });
  });

  it('says the giver has no VMs when its load is an override', () => {
    const input = twoNodes([], [], { a: { loadOverride: 50 } });
    const p = pairOf(decide(input), 'a', 'b');
    expect(p.reason).toEqual({ code: 'no-candidate', detail: 'a has no VMs to give' });
  });

  it('counts the VMs each constraint keeps back', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b', memCapacityPages: 100 })],
      [
        aVm({ id: 'p', node: 'a', load: 5, pinned: true }),
        aVm({ id: 'c', node: 'a', load: 5, cooldownUntil: 2_000_000 }),
        aVm({ id: 'm1', node: 'a', load: 5, memPages: 200 }),
        aVm({ id: 'm2', node: 'a', load: 5, memPages: 200 }),
      ],
    );
    const p = pairOf(decide(input), 'a', 'b');
    expect(p.reason).toEqual({
      code: 'constraint',
      detail: 'no VM of a may move to b: 1 pinned, 1 cooldown, 2 memory',
    });
  });
});

describe('an exchange that moves', () => {
  it('reports the moves, the load moved and both loads before and after', () => {
    const d = decide(twoNodes([10, 20, 45, 45], [80]), { aim: 'pair', pairing: 'round-robin' });
    expect(pairOf(d, 'a', 'b').reason).toEqual({
      code: 'moved',
      detail: 'a gave 1 VM(s), load 20, to b: 120/80 → 100/100',
    });
  });

  it('says when the less loaded side pulled', () => {
    const d = decide(twoNodes([80], [10, 20, 45, 45]), { aim: 'pair', pairing: 'round-robin' });
    const p = pairOf(d, 'a', 'b');
    expect(p.requester).toBe('a');
    expect(p.reason.detail).toBe(
      'b gave (pulled by the less loaded side) 1 VM(s), load 20, to a: 120/80 → 100/100',
    );
  });

  it('moves one VM per exchange without multi-VM exchanges, several with them', () => {
    const input = twoNodes([10, 10, 10, 10], []);
    expect(decide(input, { multiVm: false }).moves).toHaveLength(1);
    expect(decide(input, { multiVm: true }).moves).toHaveLength(2);
    expect(decide(input, { multiVm: true, maxMovesPerExchange: 1 }).moves).toHaveLength(1);
  });

  it('keeps moving while the giver still exceeds the taker, and stops once it does not', () => {
    // 9 VMs of 1 against 0 under factor 3: after three moves 6 no longer exceeds 3 × 3.
    const d = decide(twoNodes([1, 1, 1, 1, 1, 1, 1, 1, 1], []), { aim: 'pair', thresholdFactor: 3 });
    expect(d.moves).toHaveLength(3);
    const even = decide(twoNodes([1, 1, 1, 1, 1, 1, 1, 1, 1], []), { aim: 'pair' });
    expect(even.moves).toHaveLength(4);
  });

  it('stops at the per-node limit within an exchange', () => {
    const d = decide(twoNodes([10, 10, 10, 10], []), { maxMigrationsPerNode: 1 });
    expect(d.moves).toHaveLength(1);
  });

  it('stops at the cluster limit within an exchange', () => {
    const d = decide(twoNodes([10, 10, 10, 10], []), { maxMigrationsPerCluster: 1 });
    expect(d.moves).toHaveLength(1);
  });

  it('drops the candidates that no longer fit the taker after a move', () => {
    // b has room for one VM of 300 pages only.
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b', memCapacityPages: 400 })],
      vmsOn('a', [10, 10, 10, 10], { memPages: 300 }),
    );
    expect(decide(input).moves).toHaveLength(1);
  });

  it('stops a giver slightly above the mean at the mean, however far below it the taker is', () => {
    // Mean 16: a (22, VMs of 2) sheds its 6 above the mean to b (2), not the 10 that would even them.
    const input = aRound(
      ['x', 'y', 'a', 'b'].map((id) => aNode({ id })),
      [...vmsOn('x', [20, 20]), ...vmsOn('a', Array(11).fill(2)), ...vmsOn('b', [2])],
    );
    const d = decide(input, { aim: 'mean' });
    expect(d.moves.filter((m) => m.from === 'a').map((m) => m.to)).toEqual(['b', 'b', 'b']);
  });

  it('lets a giver far above the mean pass a taker near the mean by a quarter of its excess', () => {
    // a 60 (VMs of 2) and five nodes of 10: mean 18.33; a sheds a quarter of its 41.67 excess (10.42),
    // to the nearest VM: five VMs.
    const others = ['b', 'c', 'd', 'e', 'f'];
    const input = aRound(
      [aNode({ id: 'a' }), ...others.map((id) => aNode({ id }))],
      [...vmsOn('a', Array(30).fill(2)), ...others.flatMap((id) => vmsOn(id, [10]))],
    );
    const d = decide(input, { aim: 'mean' });
    expect(d.moves.filter((m) => m.from === 'a')).toHaveLength(5);
  });

  it('needs nothing from a giver whose taker already has all it may take, and says the aim', () => {
    // Headroom: b sits exactly at the threshold (80), so a (95) has nothing to give it.
    expect(headroomReason([95], [80]).code).toBe('balanced');
  });

  it('lets a giver above the mean pass the taker over the mean when every VM is too large to stop at it', () => {
    // a 28 (VMs 9, 9, 10), b 18, c 20: mean 22. Stopping b at the mean needs a VM under 8; none is,
    // so a gives a 9 and b passes the mean (27).
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c' })],
      [...vmsOn('a', [9, 9, 10]), ...vmsOn('b', [18]), ...vmsOn('c', [20])],
    );
    const d = decide(input, { aim: 'mean', withRandom: false });
    expect(d.moves.map((m) => [m.from, m.to, m.loadOnSource])).toEqual([['a', 'b', 9]]);
  });
});

describe('a swap when no single VM helps', () => {
  // a 16 (four VMs of 4), b 12 (four of 3): a 4 would leave 12 vs 16; a 4 for a 3 leaves 15 vs 13.
  const swapPair = (b: Partial<NodeInfo> = {}) => twoNodes([4, 4, 4, 4], [3, 3, 3, 3], { b });

  it('swaps one for one and says what it swapped', () => {
    const d = decide(swapPair());
    expect(d.moves.map((m) => [m.vm, m.from, m.to])).toEqual([
      ['a-0', 'a', 'b'],
      ['b-0', 'b', 'a'],
    ]);
    expect(pairOf(d, 'a', 'b').reason).toEqual({
      code: 'moved',
      detail: 'no single VM helps, so a and b swapped a-0 (4) for b-0 (3): 16/12 → 15/13',
    });
  });

  it('swaps two for one and names both VMs of the side that gives two', () => {
    // b (13: 6 4 3) over a (11: 4 1 6): no single VM helps, b's 4 and 3 for a's 6 evens the pair.
    const d = decide(twoNodes([4, 1, 6], [6, 4, 3]));
    expect(pairOf(d, 'a', 'b').reason.detail).toBe(
      'no single VM helps, so b and a swapped b-1 (4) and b-2 (3) for a-2 (6): 13/11 → 12/12',
    );
  });

  it('says no gain, naming the movable VMs, when a swap is not allowed', () => {
    const d = decide(swapPair(), { multiVm: false });
    expect(d.moves).toEqual([]);
    expect(pairOf(d, 'a', 'b').reason).toEqual({
      code: 'no-gain',
      detail: "none of 4 movable VM(s) of a brings 16 vs 12 closer without raising the pair's maximum",
    });
  });

  it('swaps between nodes of the same weights only, a missing optional weight counting as 0', () => {
    // A CPU weight of 1.1 on b would allow a-0 (4) for b-0 (3.3 on b): 16/13.2 → 15/14.3.
    const extra: Partial<Weights>[] = [{ cpu: 1.1 }, { io: 1 }, { mem: 1 }, { paging: 1 }, { net: 1 }];
    for (const w of extra) {
      const d = decide(swapPair({ weights: { cpu: 1, io: 0, mem: 0, ...w } }));
      expect(d.moves, JSON.stringify(w)).toEqual([]);
    }
    const zeros = decide(swapPair({ weights: { cpu: 1, io: 0, mem: 0, paging: 0, net: 0 } }));
    expect(zeros.moves).toHaveLength(2);
  });

  it('needs budget for two migrations on both nodes and in the cluster', () => {
    expect(decide(swapPair(), { maxMigrationsPerCluster: 1 }).moves).toEqual([]);
    expect(decide({ ...swapPair(), inFlight: { b: 7 } }, { maxMigrationsPerNode: 8 }).moves).toEqual([]);
    expect(decide({ ...swapPair(), inFlight: { a: 7 } }, { maxMigrationsPerNode: 8 }).moves).toEqual([]);
    expect(decide({ ...swapPair(), inFlight: { a: 6 } }, { maxMigrationsPerNode: 8 }).moves).toHaveLength(2);
  });

  it('needs a VM of the taker that may move back', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [4, 4, 4, 4]), ...vmsOn('b', [3, 3, 3, 3], { pinned: true })],
    );
    expect(decide(input).moves).toEqual([]);
  });

  it('is only for givers near the top of the cluster, with a taker below the mean', () => {
    // x (30) and y (0) pair and move; a (16) is far below the top (swap floor 22.25): no swap.
    const input = aRound(
      ['x', 'y', 'a', 'b'].map((id) => aNode({ id })),
      [...vmsOn('x', [10, 10, 10]), ...vmsOn('a', [4, 4, 4, 4]), ...vmsOn('b', [3, 3, 3, 3])],
    );
    const d = decide(input);
    expect(pairOf(d, 'a', 'b').reason.code).toBe('no-gain');
    expect(d.moves.every((m) => m.from === 'x' && m.to === 'y')).toBe(true);
  });
});
