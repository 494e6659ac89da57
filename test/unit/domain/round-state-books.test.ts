// The round's books read directly (shared/domain/round-state.ts): the input builder's per-VM loads,
// both sides of a move (memory, groups, budgets), candidates under the taker's own weights, and a round
// where every node drains.
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { vmLoad } from '../../../shared/domain/load.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import {
  applyMove,
  budgetOf,
  candidatesFor,
  loadOf,
  nodeOf,
  prepareRound,
  resultFor,
  takerOf,
  toFixed3,
  vmsOf,
} from '../../../shared/domain/round-state.ts';
import type { NodeInfo, RoundInput, Weights } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, vmsOn } from './fixtures.ts';

const config = aConfig({ maxMigrationsPerNode: 3, maxMigrationsPerCluster: 5 });

describe("the input builder's per-VM loads", () => {
  const input = aRound(
    [aNode({ id: 'a' }), aNode({ id: 'b' })],
    [...vmsOn('a', [1, 2]), ...vmsOn('b', [4]), aVm({ id: 'x', node: 'gone', load: 8 })],
  );

  it('are taken as given when as long as the VMs: loads, and VMs per node (a node of −1 is outside the round)', () => {
    // The builder says a-0 weighs 10 and a-1 20 on a, b-0 40 on b; x is on no node of the round.
    const given: RoundInput = { ...input, vmLoads: { node: [0, 0, 1, -1], load: [10, 20, 40, 80] } };
    const state = prepareRound(given, config);
    expect([loadOf(state, 'a'), loadOf(state, 'b')]).toEqual([30, 40]);
    expect(vmsOf(state, 'a').map((v) => v.id)).toEqual(['a-0', 'a-1']);
    expect(vmsOf(state, 'b').map((v) => v.id)).toEqual(['b-0']);
    const { candidates } = candidatesFor(state, nodeOf(state, 'a'), nodeOf(state, 'b'));
    expect(candidates.map((c) => c.loadOnSource)).toEqual([10, 20]);
  });

  it('are ignored when either list is not as long as the VMs', () => {
    for (const vmLoads of [
      { node: [0, 0, 1], load: [10, 20, 40, 80] },
      { node: [0, 0, 1, -1], load: [10, 20, 40] },
    ]) {
      const state = prepareRound({ ...input, vmLoads }, config);
      expect([loadOf(state, 'a'), loadOf(state, 'b')]).toEqual([3, 4]);
    }
  });
});

describe('both sides of a move', () => {
  const input = aRound(
    [aNode({ id: 'a' }), aNode({ id: 'b' })],
    [
      aVm({ id: 'g1', node: 'a', load: 3, group: 'g', memPages: 10 }),
      aVm({ id: 'p', node: 'a', load: 1, memPages: 5 }),
      aVm({ id: 'q', node: 'b', load: 2, memPages: 7 }),
    ],
    { inFlight: { b: 1 } },
  );

  it('moves the VM’s memory, group and load from the giver to the taker, and spends both budgets and the cluster’s', () => {
    const state = prepareRound(input, config);
    const a = nodeOf(state, 'a');
    const b = nodeOf(state, 'b');
    expect(takerOf(state, 'a')).toMatchObject({ memUsedPages: 15 });
    expect(takerOf(state, 'a').groups.get('g')).toBe(1);
    const result = resultFor(state, 'a', 'b');
    const [g1] = candidatesFor(state, a, b).candidates;
    const move = applyMove(state, g1 as NonNullable<typeof g1>, a, b);
    expect(move).toEqual({ vm: 'g1', from: 'a', to: 'b', loadOnSource: 3, loadOnTarget: 3 });
    expect([loadOf(state, 'a'), loadOf(state, 'b')]).toEqual([1, 5]);
    expect(takerOf(state, 'a').memUsedPages).toBe(5);
    expect(takerOf(state, 'b').memUsedPages).toBe(17);
    expect(takerOf(state, 'a').groups.get('g')).toBe(0);
    expect(takerOf(state, 'b').groups.get('g')).toBe(1);
    expect([budgetOf(state, 'a'), budgetOf(state, 'b'), state.clusterBudget]).toEqual([2, 1, 3]);
    // The pair's decision keeps the loads as the exchange started and predicts those after it.
    expect(result({ code: 'moved', detail: '' }, [move])).toMatchObject({
      loads: { requester: 4, selected: 2 },
      predicted: { requester: 1, selected: 5 },
    });
  });

  it('starts a group on a node that had none without giving it to nodes that still have none', () => {
    const nodes = ['a', 'b', 'c'].map((id) => aNode({ id }));
    const state = prepareRound(aRound(nodes, [aVm({ id: 'g1', node: 'a', group: 'g' })]), config);
    const [a, b] = [nodeOf(state, 'a'), nodeOf(state, 'b')];
    expect(takerOf(state, 'c').groups.size).toBe(0);
    const [g1] = candidatesFor(state, a, b).candidates;
    applyMove(state, g1 as NonNullable<typeof g1>, a, b);
    expect(takerOf(state, 'b').groups.get('g')).toBe(1);
    expect(takerOf(state, 'c').groups.size).toBe(0);
  });

  it('counts a group on a giver that holds it twice down by one per VM given', () => {
    const nodes = ['a', 'b'].map((id) => aNode({ id }));
    const vms = [aVm({ id: 'g1', node: 'a', group: 'g' }), aVm({ id: 'g2', node: 'a', group: 'g' })];
    const state = prepareRound(aRound(nodes, vms), config);
    const [a, b] = [nodeOf(state, 'a'), nodeOf(state, 'b')];
    expect(takerOf(state, 'a').groups.get('g')).toBe(2);
    const [g1] = candidatesFor(state, a, b).candidates;
    applyMove(state, g1 as NonNullable<typeof g1>, a, b);
    expect(takerOf(state, 'a').groups.get('g')).toBe(1);
  });
});

describe('a candidate’s load on the taker', () => {
  it('is computed under the taker’s weights whenever any one weight differs', () => {
    const factors = { cpu: 1, io: 2, mem: 3, paging: 4, net: 5 };
    const base: Weights = { cpu: 1, io: 1, mem: 1, paging: 1, net: 1 };
    for (const key of ['cpu', 'io', 'mem', 'paging', 'net'] as const) {
      const other: Weights = { ...base, [key]: 2 };
      const nodes: NodeInfo[] = [aNode({ id: 'a', weights: base }), aNode({ id: 'b', weights: other })];
      const state = prepareRound(aRound(nodes, [{ ...aVm({ id: 'v', node: 'a' }), factors }]), config);
      const [c] = candidatesFor(state, nodeOf(state, 'a'), nodeOf(state, 'b')).candidates;
      expect(c?.loadOnSource, key).toBe(15);
      expect(c?.loadOnTarget, key).toBe(vmLoad(factors, other));
      expect(c?.loadOnTarget, key).toBe(15 + factors[key]);
    }
  });
});

describe('a node’s VMs', () => {
  it('are gathered on first use and the same list is returned afterwards, as the round started', () => {
    // Like the round's expected loads, one object however often read (drain and mirror ask again and
    // again); moves do not change it: it lists the VMs as the round started.
    const state = prepareRound(
      aRound(
        ['a', 'b'].map((id) => aNode({ id })),
        vmsOn('a', [2, 1]),
      ),
      config,
    );
    const first = vmsOf(state, 'a');
    expect(first.map((v) => v.id)).toEqual(['a-0', 'a-1']);
    const [a, b] = [nodeOf(state, 'a'), nodeOf(state, 'b')];
    const [c] = candidatesFor(state, a, b).candidates;
    applyMove(state, c as NonNullable<typeof c>, a, b);
    expect(vmsOf(state, 'a')).toBe(first);
    expect(first.map((v) => v.id)).toEqual(['a-0', 'a-1']);
    expect(vmsOf(state, 'b')).toEqual([]);
  });
});

describe('a round where every node drains', () => {
  it('has a mean and a swap floor of 0, not NaN', () => {
    const nodes = ['a', 'b'].map((id) => aNode({ id, draining: true }));
    const state = prepareRound(aRound(nodes, vmsOn('a', [2, 2])), config);
    expect(state.mean).toBe(0);
    expect(state.swapFloor).toBe(0);
  });
});

describe('a giver without VMs', () => {
  it('says it has none to give, wherever it is listed', () => {
    // a's load is an override (10) and it holds no VM; it is listed after b.
    const input = aRound([aNode({ id: 'b' }), aNode({ id: 'a', loadOverride: 10 })], vmsOn('b', [1]));
    const d = decideRound(input, config, createRng(1));
    expect(d.pairs.map((p) => p.reason)).toEqual([{ code: 'no-candidate', detail: 'a has no VMs to give' }]);
  });
});

describe('a load printed to three decimals', () => {
  it('keeps the zeros of a whole number of tenths (pinned)', () => {
    for (const [x, s] of [
      [0.1, '0.100'],
      [2.1, '2.100'],
      [0.01, '0.010'],
      [-3.25, '-3.250'],
    ] as const)
      expect(toFixed3(x)).toBe(s);
  });
});
