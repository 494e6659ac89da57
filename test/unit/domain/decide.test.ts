import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, RoundInput } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, drainingNodes, vmsOn, vmsOnEach } from './fixtures.ts';

const decide = (input: RoundInput, config: Partial<BalancingConfig> = {}) =>
  decideRound(input, aConfig(config), createRng(1));

/** The patent's worked example: a node at 120 (VMs 10, 20, 45, 45) and a node at 80. */
const workedExample = () =>
  aRound(
    [aNode({ id: 'req' }), aNode({ id: 'sel' })],
    [...vmsOn('req', [10, 20, 45, 45]), ...vmsOn('sel', [80])],
  );

describe('decideRound on the patent examples', () => {
  it('moves the VM of 20 from the node at 120 to the node at 80 so both end at 100', () => {
    const decision = decide(workedExample(), { multiVm: false, aim: 'pair' });
    expect(decision.moves).toEqual([
      { vm: 'req-1', from: 'req', to: 'sel', loadOnSource: 20, loadOnTarget: 20 },
    ]);
    const pair = decision.pairs[0];
    expect(pair?.reason.code).toBe('moved');
    const predicted = pair ? Object.values(pair.predicted).sort() : [];
    expect(predicted).toEqual([100, 100]);
    expect(decision.after.cv).toBe(0);
    expect(decision.before.maxLoad).toBe(120);
  });

  it('picks the same VM under every pairing policy and with multi-VM exchanges on', () => {
    for (const pairing of ['random', 'round-robin', 'spread', 'symmetric'] as const) {
      const decision = decide(workedExample(), { pairing, highThreshold: 0.1, lowThreshold: 0.09 });
      expect(decision.moves.map((m) => m.vm)).toEqual(['req-1']);
    }
  });

  it('uses programmed target loads with the target rule (Fig. 7)', () => {
    // Search load is 20; target loads 18, 30, 50, 50: the VM whose target is 18 (load 10) moves.
    const vms = [
      aVm({ id: 'a', node: 'req', load: 10, targetLoad: 18 }),
      aVm({ id: 'b', node: 'req', load: 20, targetLoad: 30 }),
      aVm({ id: 'c', node: 'req', load: 45, targetLoad: 50 }),
      aVm({ id: 'd', node: 'req', load: 45, targetLoad: 50 }),
      ...vmsOn('sel', [80]),
    ];
    const input = aRound([aNode({ id: 'req' }), aNode({ id: 'sel' })], vms);
    expect(decide(input, { selection: 'target', multiVm: false }).moves.map((m) => m.vm)).toEqual(['a']);
    expect(decide(input, { selection: 'half-diff', multiVm: false }).moves.map((m) => m.vm)).toEqual(['b']);
  });

  it('moves the largest VM that does not raise the pair maximum under the largest rule', () => {
    const input = aRound(
      [aNode({ id: 'req' }), aNode({ id: 'sel' })],
      [...vmsOn('req', [10, 20, 35, 55]), ...vmsOn('sel', [80])],
    );
    // 55 would leave 65 vs 135 and raise the maximum; 35 is the largest that shrinks the gap.
    expect(decide(input, { selection: 'largest', multiVm: false }).moves.map((m) => m.vm)).toEqual(['req-2']);
  });
});

describe('decideRound with heterogeneous weights', () => {
  // The selected node is slower: every VM costs it twice as much.
  const input = aRound(
    [aNode({ id: 'req' }), aNode({ id: 'sel', weights: { cpu: 2, io: 0, mem: 0 } })],
    [...vmsOn('req', [10, 20, 45, 45]), ...vmsOn('sel', [40])],
  );

  it('picks by net gain under each node’s weights, where half-difference picks another VM', () => {
    const best = decide(input, { selection: 'best-balance', multiVm: false, aim: 'pair' });
    const half = decide(input, { selection: 'half-diff', multiVm: false, aim: 'pair' });
    expect(best.moves.map((m) => m.vm)).toEqual(['req-0']);
    expect(best.moves[0]).toMatchObject({ loadOnSource: 10, loadOnTarget: 20 });
    expect(best.pairs[0]?.predicted).toMatchObject({ requester: 110, selected: 100 });
    expect(half.moves.map((m) => m.vm)).toEqual(['req-1']);
  });
});

describe('decideRound exceeds test and direction', () => {
  const twoNodes = (a: number[], b: number[]) =>
    aRound([aNode({ id: 'a' }), aNode({ id: 'b' })], [...vmsOn('a', a), ...vmsOn('b', b)]);

  it('does nothing when the difference is within the threshold factor', () => {
    const decision = decide(twoNodes([105], [100]), { thresholdFactor: 1.1 });
    expect(decision.moves).toEqual([]);
    expect(decision.pairs[0]?.reason.code).toBe('below-threshold');
  });

  it('does nothing when the difference is below the absolute margin', () => {
    const decision = decide(twoNodes([3, 1], [2]), { margin: 5 });
    expect(decision.moves).toEqual([]);
    expect(decision.pairs[0]?.reason.code).toBe('below-threshold');
  });

  it('says balanced when the loads are equal', () => {
    expect(decide(twoNodes([5], [5])).pairs[0]?.reason.code).toBe('balanced');
  });

  it('lets the less loaded requester pull from the selected node (Fig. 3 blocks 80/82)', () => {
    const input = aRound(
      [aNode({ id: 'low' }), aNode({ id: 'high' })],
      [...vmsOn('low', [80]), ...vmsOn('high', [10, 20, 45, 45])],
    );
    const decision = decideRound(input, aConfig({ pairing: 'round-robin' }), createRng(1));
    expect(decision.pairs[0]).toMatchObject({ requester: 'high', selected: 'low' });
    const swapped = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [80]), ...vmsOn('b', [10, 20, 45, 45])],
    );
    const pulled = decideRound(swapped, aConfig({ pairing: 'round-robin' }), createRng(1));
    expect(pulled.pairs[0]).toMatchObject({ requester: 'a', selected: 'b' });
    expect(pulled.moves).toMatchObject([{ from: 'b', to: 'a', loadOnSource: 20 }]);
  });

  it('does nothing under push-only when the requester is the less loaded side', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [80]), ...vmsOn('b', [10, 20, 45, 45])],
    );
    const decision = decideRound(
      input,
      aConfig({ pairing: 'round-robin', direction: 'push-only' }),
      createRng(1),
    );
    expect(decision.moves).toEqual([]);
    expect(decision.pairs[0]?.reason.code).toBe('push-only');
  });

  it('moves several VMs when one is not enough, each shrinking the gap', () => {
    const decision = decide(twoNodes([10, 10, 10, 10, 10, 10], [0]), {
      maxMovesPerExchange: 4,
      maxMigrationsPerNode: 4,
    });
    expect(decision.moves).toHaveLength(3);
    expect(decision.after.cv).toBe(0);
  });

  it('moves one VM only when multi-VM exchanges are off', () => {
    const decision = decide(twoNodes([10, 10, 10, 10, 10, 10], [0]), { multiVm: false });
    expect(decision.moves).toHaveLength(1);
  });

  it('says no-gain when every VM is too large to help', () => {
    const decision = decide(twoNodes([100], [10]));
    expect(decision.moves).toEqual([]);
    expect(decision.pairs[0]?.reason.code).toBe('no-gain');
  });

  it('stops at the shard mean instead of evening the pair when aiming at the mean', () => {
    // Mean is 50: the node at 100 gives 40 to the node at 10, not the 45 that evens the pair.
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c' }), aNode({ id: 'd' })],
      [...vmsOn('a', [45, 40, 15]), ...vmsOn('b', [10]), ...vmsOn('c', [45]), ...vmsOn('d', [45])],
    );
    const mean = decide(input, { pairing: 'spread', aim: 'mean' });
    expect(mean.moves.map((m) => m.loadOnSource)).toEqual([40]);
    const pair = decide(input, { pairing: 'spread', aim: 'pair' });
    expect(pair.moves.map((m) => m.loadOnSource)).toEqual([45]);
  });
});

describe('decideRound constraints', () => {
  const base = (over: Parameters<typeof aVm>[0]) =>
    aRound([aNode({ id: 'a' }), aNode({ id: 'b' })], [aVm(over), aVm({ id: 'other', node: 'a', load: 5 })]);

  it('never moves a pinned VM', () => {
    const decision = decide(base({ id: 'v', node: 'a', load: 20, pinned: true }));
    expect(decision.moves.map((m) => m.vm)).toEqual(['other']);
  });

  it('reports a constraint when the only candidate is pinned', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [aVm({ id: 'v', node: 'a', load: 20, pinned: true })],
    );
    const decision = decide(input);
    expect(decision.moves).toEqual([]);
    expect(decision.pairs[0]?.reason).toMatchObject({ code: 'constraint' });
    expect(decision.pairs[0]?.reason.detail).toContain('pinned');
  });

  it('skips a VM cooling down after a recent move, and moves it once the cooldown has passed', () => {
    const input = base({ id: 'v', node: 'a', load: 20, cooldownUntil: 2_000_000 });
    expect(decide({ ...input, now: 1_000_000 }).moves.map((m) => m.vm)).toEqual(['other']);
    expect(decide({ ...input, now: 3_000_000 }).moves.map((m) => m.vm)).toContain('v');
  });

  it('skips a busy VM', () => {
    expect(decide(base({ id: 'v', node: 'a', load: 20, busy: true })).moves.map((m) => m.vm)).toEqual([
      'other',
    ]);
  });

  it('moves nothing that does not fit in the receiver memory', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b', memCapacityPages: 100 })],
      [
        aVm({ id: 'big', node: 'a', load: 20, memPages: 90 }),
        aVm({ id: 'small', node: 'a', load: 4, memPages: 10 }),
        aVm({ id: 'resident', node: 'b', load: 1, memPages: 20 }),
      ],
    );
    expect(decide(input).moves.map((m) => m.vm)).toEqual(['small']);
  });

  it('never puts two VMs of one anti-affinity group on one node', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [
        aVm({ id: 'web-1', node: 'a', load: 20, group: 'web' }),
        aVm({ id: 'db-1', node: 'a', load: 4 }),
        aVm({ id: 'web-2', node: 'b', load: 1, group: 'web' }),
      ],
    );
    expect(decide(input).moves.map((m) => m.vm)).toEqual(['db-1']);
  });

  it('does not move two VMs of one group to the same node in one exchange', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [10, 10, 10, 10], { group: 'g' })],
    );
    const decision = decide(input, { maxMovesPerExchange: 4, maxMigrationsPerNode: 4 });
    expect(decision.moves).toHaveLength(1);
  });

  it('empties a draining node into its partner even when it is the less loaded, and gives it nothing', () => {
    const input = aRound(
      [aNode({ id: 'drain', draining: true }), aNode({ id: 'busy' })],
      [...vmsOn('drain', [5, 6]), ...vmsOn('busy', [50])],
    );
    const decision = decide(input, { maxMigrationsPerNode: 10 });
    expect(decision.moves.map((m) => [m.from, m.to])).toEqual([
      ['drain', 'busy'],
      ['drain', 'busy'],
    ]);
    expect(decision.pairs[0]?.reason.code).toBe('moved');
  });

  it('keeps pinned VMs on a draining node', () => {
    const input = aRound(
      [aNode({ id: 'drain', draining: true }), aNode({ id: 'b' })],
      [aVm({ id: 'p', node: 'drain', load: 5, pinned: true }), aVm({ id: 'q', node: 'drain', load: 5 })],
    );
    expect(decide(input, { maxMigrationsPerNode: 10 }).moves.map((m) => m.vm)).toEqual(['q']);
  });

  it('does nothing between two draining nodes', () => {
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b', draining: true })],
      [...vmsOn('a', [5]), ...vmsOn('b', [50])],
    );
    const decision = decide(input);
    expect(decision.moves).toEqual([]);
    expect(decision.pairs).toEqual([]);
    expect(decision.skipped.map((s) => s.node).sort()).toEqual(['a', 'b']);
    expect(decision.skipped[0]?.reason).toMatch(/draining/);
  });
});

describe('decideRound migration limits', () => {
  it('leaves out a node whose in-flight migrations reach the per-node limit', () => {
    const input = aRound([aNode({ id: 'a' }), aNode({ id: 'b' })], [...vmsOn('a', [10, 10])], {
      inFlight: { a: 1 },
    });
    const decision = decide(input, { maxMigrationsPerNode: 1 });
    expect(decision.pairs).toEqual([]);
    expect(decision.skipped).toEqual([{ node: 'a', reason: expect.stringContaining('limit') }]);
  });

  it('caps moves per node with what is already in flight', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [10, 10, 10, 10, 10, 10])],
      {
        inFlight: { a: 2 },
      },
    );
    const decision = decide(input, { maxMigrationsPerNode: 3, maxMovesPerExchange: 4 });
    expect(decision.moves).toHaveLength(1);
  });

  it('stops at the cluster limit, serving the widest gaps first', () => {
    const nodes = ['a', 'b', 'c', 'd'].map((id) => aNode({ id }));
    const vms = [...vmsOn('a', [10, 10]), ...vmsOn('c', [1, 1, 1, 1])];
    const decision = decideRound(
      aRound(nodes, vms, { inFlight: { x: 0 } }),
      aConfig({ pairing: 'round-robin', maxMigrationsPerCluster: 1, aim: 'pair' }),
      createRng(1),
    );
    expect(decision.moves).toHaveLength(1);
    expect(decision.moves[0]?.from).toBe('a');
    expect(decision.pairs.map((p) => p.reason.code)).toContain('limit');
  });
});

describe('decideRound reasons', () => {
  it('gives every pair a reason with a detail', () => {
    const nodes = Array.from({ length: 10 }, (_, i) => aNode({ id: `n${i}` }));
    const vms = nodes.flatMap((n, i) =>
      vmsOn(
        n.id,
        Array.from({ length: i }, () => 3),
      ),
    );
    const decision = decideRound(aRound(nodes, vms), aConfig({ pairing: 'random' }), createRng(5));
    expect(decision.pairs).toHaveLength(5);
    for (const p of decision.pairs) expect(p.reason.detail.length).toBeGreaterThan(0);
  });
});

describe('decideRound with the headroom trigger', () => {
  const nodes = [aNode({ id: 'a', capacity: 100 }), aNode({ id: 'b', capacity: 100 })];
  const headroom = { trigger: 'headroom' as const, highThreshold: 0.8, aim: 'pair' as const };

  it('leaves a pair alone while the busier node has headroom, however uneven', () => {
    const decision = decide(aRound(nodes, [...vmsOn('a', [30, 30, 10]), ...vmsOn('b', [5])]), headroom);
    expect(decision.moves).toEqual([]);
    expect(decision.pairs[0]?.reason.code).toBe('below-threshold');
  });

  it('sheds load from a node above the high threshold without pushing the taker above it', () => {
    const decision = decide(aRound(nodes, [...vmsOn('a', [30, 30, 30]), ...vmsOn('b', [45, 20])]), {
      ...headroom,
      maxMovesPerExchange: 4,
    });
    // a is at 90 (> 80), b at 65: b may take at most 15, so one VM of 30 would break b's headroom;
    // a swap (30 for 20) moves a net 10 and leaves b at 75, under the threshold.
    expect(decision.moves.map((m) => [m.from, m.loadOnSource])).toEqual([
      ['a', 30],
      ['b', 20],
    ]);
    expect(decision.pairs[0]?.predicted).toMatchObject({ requester: 80, selected: 75 });
    expect(
      decide(aRound(nodes, [...vmsOn('a', [30, 30, 30]), ...vmsOn('b', [45, 20])]), {
        ...headroom,
        multiVm: false,
      }).moves,
    ).toEqual([]);
    const roomy = decide(aRound(nodes, [...vmsOn('a', [30, 30, 30]), ...vmsOn('b', [20])]), headroom);
    expect(roomy.moves.map((m) => m.loadOnSource)).toEqual([30]);
    expect(roomy.pairs[0]?.predicted).toMatchObject({ requester: 60, selected: 50 });
  });
});

describe('decideRound with spread pairing and draining nodes', () => {
  it('pairs a draining node with the least loaded node', () => {
    const input = aRound(
      drainingNodes('drain', 'mid', 'high', 'low'),
      vmsOnEach({ drain: [3], mid: [50], high: [90], low: [10] }),
    );
    const decision = decide(input, { pairing: 'spread' });
    expect(decision.pairs.map((p) => [p.requester, p.selected])).toContainEqual(['drain', 'low']);
    expect(decision.moves.filter((m) => m.from === 'drain').map((m) => m.to)).toEqual(['low']);
  });
});
