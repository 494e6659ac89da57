// A round read from the input builder's columns (`RoundInput.table`, shared/domain/vm-table.ts)
// decides what the same round read from the VM objects decides: the same pairs, reasons, moves and
// expected loads. Checked on random clusters with every constraint (fast-check, fixed seed) beside
// pinned cases: the table's own loads are the ones used, and a node id listed twice makes the round
// read the VMs instead (the columns' node positions are then not the round's), counting that node
// once in the trigger.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import type { DriverName } from '../../../shared/domain/guests.ts';
import { vmLoad } from '../../../shared/domain/load.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { candidatesFor, loadOf, nodeOf, prepareRound, vmsOf } from '../../../shared/domain/round-state.ts';
import { chooseTrigger } from '../../../shared/domain/trigger.ts';
import type {
  BalancingConfig,
  NodeInfo,
  RoundDecision,
  RoundInput,
  VmInfo,
} from '../../../shared/domain/types.ts';
import { vmTableOf } from '../../../shared/domain/vm-table.ts';
import { aConfig, aNode, aRound, aVm, vmsOn } from './fixtures.ts';

/** The builder's columns for `input`: each VM's node position (−1 off the round) and its load there. */
function withTable(
  input: RoundInput,
  loadOf = (vm: VmInfo, node: NodeInfo) => vmLoad(vm.factors, node.weights),
) {
  const at = new Map(input.nodes.map((n, i) => [n.id, i]));
  const node = Int32Array.from(input.vms, (vm) => at.get(vm.node) ?? -1);
  const load = Float64Array.from(input.vms, (vm, v) => {
    const i = node[v] as number;
    return i < 0 ? 0 : loadOf(vm, input.nodes[i] as NodeInfo);
  });
  return { ...input, table: vmTableOf(input.vms, node, load) };
}

/** Everything a round decides, as plain data. */
function outcome(d: RoundDecision) {
  return {
    pairs: d.pairs,
    moves: d.moves,
    skipped: d.skipped,
    before: d.before,
    after: d.after,
    expected: d.expected,
    trigger: d.trigger,
  };
}

const NOW = 1_000_000;

const clusterArb = fc
  .record({
    nodes: fc.array(
      fc.record({
        cpu: fc.constantFrom(0.5, 1, 1, 2),
        io: fc.constantFrom(0, 0, 1),
        draining: fc.boolean(),
        mem: fc.constantFrom(100, 1000),
        qemu: fc.boolean(),
        inFlight: fc.nat(2),
      }),
      { minLength: 2, maxLength: 5 },
    ),
    vms: fc.array(
      fc.record({
        node: fc.nat(5),
        cpu: fc.integer({ min: 1, max: 9 }),
        io: fc.integer({ min: 0, max: 3 }),
        memPages: fc.constantFrom(16, 40, 90),
        pinned: fc.boolean(),
        busy: fc.option(fc.constant(true), { freq: 6 }),
        cooldown: fc.option(fc.integer({ min: -1, max: 1 }), { freq: 4 }),
        group: fc.option(fc.constantFrom('g', 'h'), { freq: 2 }),
        driver: fc.option(fc.constantFrom<DriverName>('qemu'), { freq: 4 }),
      }),
      { maxLength: 16 },
    ),
  })
  .map(({ nodes, vms }): RoundInput => {
    const nodeInfos = nodes.map((n, i) =>
      aNode({
        id: `n${i}`,
        weights: { cpu: n.cpu, io: n.io, mem: 0 },
        draining: n.draining && i > 0,
        memCapacityPages: n.mem,
        ...(n.qemu ? { drivers: ['wasm', 'qemu'] as DriverName[] } : {}),
      }),
    );
    // A VM on node 5 or beyond is on a node outside the round.
    const vmInfos = vms.map((v, i) => {
      const vm = aVm({
        id: `v${i}`,
        node: `n${v.node}`,
        memPages: v.memPages,
        pinned: v.pinned && i % 3 === 0,
      });
      vm.factors = { cpu: v.cpu, io: v.io, mem: 0 };
      if (v.busy) vm.busy = true;
      if (v.cooldown !== null) vm.cooldownUntil = NOW + v.cooldown;
      if (v.group !== null) vm.group = v.group;
      if (v.driver !== null) vm.driver = v.driver;
      return vm;
    });
    const inFlight = Object.fromEntries(nodes.map((n, i) => [`n${i}`, n.inFlight]));
    return aRound(nodeInfos, vmInfos, { now: NOW, inFlight });
  });

const configArb = fc.record({
  aim: fc.constantFrom('pair' as const, 'mean' as const),
  multiVm: fc.boolean(),
  maxMovesPerExchange: fc.integer({ min: 1, max: 4 }),
  maxMigrationsPerNode: fc.integer({ min: 1, max: 4 }),
  thresholdFactor: fc.constantFrom(1, 1.1),
});

describe('a round read from the columns', () => {
  it('decides what the round read from the VMs decides (random clusters with every constraint)', () => {
    fc.assert(
      fc.property(clusterArb, configArb, fc.nat(), (input, over, seed) => {
        const config: BalancingConfig = aConfig({ cooldownMs: 0, ...over });
        const fromVms = outcome(decideRound(input, config, createRng(seed)));
        const fromTable = outcome(decideRound(withTable(input), config, createRng(seed)));
        expect(fromTable).toEqual(fromVms);
      }),
      { seed: 1715, numRuns: 300 },
    );
  });

  it('moves the same VMs in a pinned round with groups, memory and drivers', () => {
    const input = aRound(
      [
        aNode({ id: 'a', memCapacityPages: 200 }),
        aNode({ id: 'b', memCapacityPages: 60 }),
        aNode({ id: 'c', drivers: ['wasm', 'qemu'] }),
      ],
      [
        aVm({ id: 'big', node: 'a', load: 6, memPages: 100 }),
        aVm({ id: 'q', node: 'a', load: 5, driver: 'qemu' }),
        aVm({ id: 'g1', node: 'a', load: 4, group: 'g' }),
        aVm({ id: 'g2', node: 'b', load: 1, group: 'g' }),
        aVm({ id: 'p', node: 'a', load: 3, pinned: true }),
      ],
    );
    const config = aConfig({ cooldownMs: 0, multiVm: true, maxMovesPerExchange: 3 });
    const fromVms = outcome(decideRound(input, config, createRng(3)));
    expect(fromVms.moves.length).toBeGreaterThan(0);
    expect(outcome(decideRound(withTable(input), config, createRng(3)))).toEqual(fromVms);
  });

  it('takes each VM’s load from the table, not from its factors', () => {
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' })],
      [...vmsOn('a', [1, 2]), ...vmsOn('b', [4])],
    );
    // The builder says a-0 weighs 10 and a-1 20 on a, b-0 40 on b.
    const tens = withTable(input, (vm) => 10 * vm.factors.cpu);
    const state = prepareRound(tens, aConfig());
    expect([loadOf(state, 'a'), loadOf(state, 'b')]).toEqual([30, 40]);
    const { candidates } = candidatesFor(state, nodeOf(state, 'a'), nodeOf(state, 'b'));
    expect(candidates.map((c) => [c.vm.id, c.loadOnSource])).toEqual([
      ['a-0', 10],
      ['a-1', 20],
    ]);
    // With a-0 at 50 the round moves a-1 (70 / 40 → 50 / 60); by the factors (3 / 4) nothing moves.
    const heavy = withTable(input, (vm) => (vm.id === 'a-0' ? 50 : 10 * vm.factors.cpu));
    const d = decideRound(heavy, aConfig({ cooldownMs: 0 }), createRng(1));
    expect(d.moves.map((m) => [m.vm, m.loadOnSource])).toEqual([['a-1', 20]]);
    expect(decideRound(input, aConfig({ cooldownMs: 0 }), createRng(1)).moves).toEqual([]);
  });

  it('reads the VMs instead when a node id is listed twice, and counts that node once in the trigger', () => {
    // a is listed at 0 and 2: its VMs belong to its last place, 2. The builder's columns put them at 0.
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'a' })];
    const vms = [...vmsOn('a', [3, 5]), ...vmsOn('b', [1])];
    const input = aRound(nodes, vms);
    const table = vmTableOf(vms, Int32Array.from([0, 0, 1]), Float64Array.from([30, 50, 10]));
    const config = aConfig({ trigger: 'auto' });
    const state = prepareRound({ ...input, table }, config);
    expect(Array.from(state.loads)).toEqual([0, 1, 8]);
    expect(vmsOf(state, 'a').map((v) => v.id)).toEqual(['a-0', 'a-1']);
    expect(state.trigger).toEqual(
      chooseTrigger(
        config,
        new Map([
          ['a', 8],
          ['b', 1],
        ]),
        undefined,
      ),
    );
    expect(outcome(decideRound({ ...input, table }, config, createRng(2)))).toEqual(
      outcome(decideRound(input, config, createRng(2))),
    );
  });

  it('counts every node once in the trigger, draining nodes not at all', () => {
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c', draining: true })];
    const input = withTable(aRound(nodes, [...vmsOn('a', [6]), ...vmsOn('b', [2]), ...vmsOn('c', [9])]));
    const config = aConfig({ trigger: 'auto' });
    const expected = { a: 5, b: 3 };
    const state = prepareRound({ ...input, expected }, config);
    expect(state.trigger).toEqual(
      chooseTrigger(
        config,
        new Map([
          ['a', 6],
          ['b', 2],
        ]),
        expected,
      ),
    );
    // Spread 0.5 (loads 6 and 2 around 4), noise 0.25 (each a drift of 1 from what was expected).
    expect(state.trigger.spread).toBeCloseTo(0.5, 12);
    expect(state.trigger.noise).toBeCloseTo(0.25, 12);
  });
});
