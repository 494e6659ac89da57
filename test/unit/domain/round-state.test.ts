// A round's bookkeeping seen from its decision: every node's load is the Fig. 4 sum of its VMs (or its
// override), every move carries the VM's load under each side's weights, and the loads a round expects
// are the loads it started from plus and minus its moves; memory and groups hold after the moves.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { nodeLoad, vmLoad } from '../../../shared/domain/load.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { prepareRound } from '../../../shared/domain/round-state.ts';
import type { BalancingConfig, NodeInfo, RoundInput, VmInfo } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, vmsOn } from './fixtures.ts';

/** The bookkeeping laws of one decided round. */
function booksBalance(input: RoundInput, config: Partial<BalancingConfig>, seed = 1) {
  const d = decideRound(input, aConfig(config), createRng(seed));
  const nodes = new Map(input.nodes.map((node) => [node.id, node]));
  const vms = new Map(input.vms.map((vm) => [vm.id, vm]));
  const at = new Map(input.vms.map((vm) => [vm.id, vm.node]));
  const start = new Map(
    input.nodes.map((node) => [
      node.id,
      nodeLoad(
        node,
        input.vms.filter((v) => v.node === node.id),
      ),
    ]),
  );
  const end = new Map(start);
  for (const m of d.moves) {
    const vm = vms.get(m.vm) as VmInfo;
    const from = nodes.get(m.from) as NodeInfo;
    const to = nodes.get(m.to) as NodeInfo;
    expect(m.loadOnSource).toBeCloseTo(vmLoad(vm.factors, from.weights), 9);
    expect(m.loadOnTarget).toBeCloseTo(vmLoad(vm.factors, to.weights), 9);
    expect(at.get(m.vm)).toBe(m.from);
    at.set(m.vm, m.to);
    end.set(m.from, (end.get(m.from) as number) - m.loadOnSource);
    end.set(m.to, (end.get(m.to) as number) + m.loadOnTarget);
  }
  for (const [id, load] of end) expect(d.expected?.[id], id).toBeCloseTo(load, 9);
  // Memory and groups on every node that took a VM, with the VMs where the round leaves them.
  const takers = new Set(d.moves.map((m) => m.to));
  for (const id of takers) {
    const here = input.vms.filter((v) => at.get(v.id) === id);
    const mem = here.reduce((sum, v) => sum + v.memPages, 0);
    expect(mem, `memory on ${id}`).toBeLessThanOrEqual((nodes.get(id) as NodeInfo).memCapacityPages);
    const groups = here.flatMap((v) => (v.group === undefined ? [] : [v.group]));
    const moved = new Set(d.moves.filter((m) => m.to === id).map((m) => vms.get(m.vm)?.group));
    for (const g of moved)
      if (g !== undefined)
        expect(
          groups.filter((x) => x === g),
          `group ${g} on ${id}`,
        ).toHaveLength(1);
  }
  return d;
}

describe('a round’s loads', () => {
  it('weigh every factor by the node’s weights, a missing factor or weight counting as 0', () => {
    const w = { cpu: 1, io: 2, mem: 3, paging: 4, net: 5 };
    const nodes = [aNode({ id: 'a', weights: w }), aNode({ id: 'b', weights: { cpu: 2, io: 1, mem: 1 } })];
    const vms = [
      aVm({ id: 'x', node: 'a', factors: { cpu: 1, io: 1, mem: 1, paging: 1, net: 1 } }),
      aVm({ id: 'y', node: 'b', factors: { cpu: 1, io: 1, mem: 1, paging: 1, net: 1 } }),
      aVm({ id: 'z', node: 'a', factors: { cpu: 1, io: 0, mem: 0 } }),
    ];
    const d = decideRound(aRound(nodes, vms), aConfig({ thresholdFactor: 10 }), createRng(1));
    expect(d.expected).toEqual({ a: 16, b: 4 });
  });

  it('count VMs listed apart from the rest of their node, and ignore VMs of nodes not in the round', () => {
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b' })];
    const vms = [
      aVm({ id: 'a1', node: 'a', load: 1 }),
      aVm({ id: 'b1', node: 'b', load: 2 }),
      aVm({ id: 'gone', node: 'c', load: 50 }),
      aVm({ id: 'a2', node: 'a', load: 3 }),
    ];
    const d = decideRound(aRound(nodes, vms), aConfig({ thresholdFactor: 10 }), createRng(1));
    expect(d.expected).toEqual({ a: 4, b: 2 });
  });

  it('take an override in place of the VMs’ sum', () => {
    const input = aRound(
      [aNode({ id: 'a', loadOverride: 7 }), aNode({ id: 'b' })],
      [...vmsOn('a', [1]), ...vmsOn('b', [6])],
    );
    const d = decideRound(input, aConfig({ thresholdFactor: 10 }), createRng(1));
    expect(d.expected).toEqual({ a: 7, b: 6 });
  });

  it('share a draining node’s load among the nodes that stay, for the mean the exchanges aim for', () => {
    const input = aRound(
      [aNode({ id: 'd', draining: true }), aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('d', [10]), ...vmsOn('a', [30]), ...vmsOn('b', [10])],
    );
    // The draining node's load is shared by the two that stay: (10 + 30 + 10) / 2.
    const state = prepareRound(input, aConfig());
    expect(state.mean).toBe(25);
    // The swap floor is halfway from the mean to the most loaded node that is not draining.
    expect(state.swapFloor).toBe(27.5);
    expect(prepareRound(aRound([aNode({ id: 'd', draining: true })], vmsOn('d', [5])), aConfig()).mean).toBe(
      0,
    );
  });

  it('give each node its limit less what it has in flight, and the cluster its limit less the sum', () => {
    const input = aRound([aNode({ id: 'a' }), aNode({ id: 'b' })], [], { inFlight: { a: 2, b: 1 } });
    const state = prepareRound(input, aConfig({ maxMigrationsPerNode: 5, maxMigrationsPerCluster: 10 }));
    expect([...state.budget]).toEqual([3, 4]);
    expect(state.clusterBudget).toBe(7);
  });
});

describe('a round’s books balance', () => {
  const clusterArb = fc
    .record({
      nodeCount: fc.integer({ min: 2, max: 5 }),
      weights: fc.array(
        fc.record({
          cpu: fc.constantFrom(0.5, 1, 2),
          io: fc.constantFrom(0, 1),
          mem: fc.constantFrom(0, 0.5),
          paging: fc.option(fc.constantFrom(0, 1), { nil: undefined }),
          net: fc.option(fc.constantFrom(0, 2), { nil: undefined }),
        }),
        { minLength: 5, maxLength: 5 },
      ),
      vms: fc.array(
        fc.record({
          node: fc.nat(5),
          cpu: fc.integer({ min: 0, max: 8 }),
          io: fc.integer({ min: 0, max: 3 }),
          paging: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
          net: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
          group: fc.option(fc.constantFrom('g', 'h'), { nil: undefined, freq: 3 }),
          memPages: fc.constantFrom(1, 4, 8),
        }),
        { maxLength: 16 },
      ),
      memCapacity: fc.constantFrom(16, 40, 1000),
      draining: fc.option(fc.nat(4), { nil: undefined, freq: 3 }),
      override: fc.option(fc.record({ node: fc.nat(4), load: fc.integer({ min: 0, max: 30 }) }), {
        nil: undefined,
        freq: 4,
      }),
      inFlight: fc.dictionary(fc.constantFrom('n0', 'n1', 'n2'), fc.nat(3)),
    })
    .map((c): RoundInput => {
      const nodes = Array.from({ length: c.nodeCount }, (_, i) =>
        aNode({
          id: `n${i}`,
          weights: c.weights[i] ?? { cpu: 1, io: 0, mem: 0 },
          memCapacityPages: c.memCapacity,
          draining: c.draining === i,
          ...(c.override?.node === i ? { loadOverride: c.override.load } : {}),
        }),
      );
      // Node 5 is not in the round when nodeCount < 6: its VMs are left out.
      const vms = c.vms.map((v, i) =>
        aVm({
          id: `v${i}`,
          node: `n${v.node}`,
          factors: { cpu: v.cpu, io: v.io, mem: 1, paging: v.paging, net: v.net },
          memPages: v.memPages,
          ...(v.group === undefined ? {} : { group: v.group }),
        }),
      );
      return aRound(nodes, vms, { inFlight: c.inFlight });
    });

  const configArb = fc.record({
    aim: fc.constantFrom('pair' as const, 'mean' as const),
    trigger: fc.constantFrom('difference' as const, 'headroom' as const),
    selection: fc.constantFrom('best-balance' as const, 'half-diff' as const, 'largest' as const),
    maxMigrationsPerNode: fc.integer({ min: 1, max: 6 }),
    pairing: fc.constantFrom('spread' as const, 'random' as const, 'round-robin' as const),
  });

  it('on random clusters with every weight, override, drain, limit and constraint', () => {
    fc.assert(
      fc.property(clusterArb, configArb, fc.nat(1000), (input, config, seed) => {
        booksBalance(input, config, seed);
      }),
      { numRuns: 300, seed: 1501 },
    );
  });
});
