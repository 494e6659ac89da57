// VM drivers as a placement constraint: a VM that needs the qemu driver only ever lands on, or is
// moved to, a node whose agent offers it (the `qemu` label); wasm VMs go anywhere.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cannotEnter } from '../../../shared/domain/constraints.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { driversOfLabels } from '../../../shared/domain/guests.ts';
import { placementCandidates, placementVmOf } from '../../../shared/domain/placement.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { NodeInfo } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aPlacementNode, aRound, aVm, vmsOn } from './fixtures.ts';

const NOW = 1_000_000;
const taker = (node: NodeInfo) => ({ node, memUsedPages: 0, groups: new Map<string, number>() });

describe('the driver constraint', () => {
  it('reads the drivers a node offers from its labels', () => {
    expect(driversOfLabels(undefined)).toEqual(['wasm']);
    expect(driversOfLabels({ rack: 'a' })).toEqual(['wasm']);
    expect(driversOfLabels({ qemu: 'tcg' })).toEqual(['wasm', 'qemu']);
  });

  it('keeps a qemu VM off a node without the driver, and lets wasm VMs in anywhere', () => {
    const wasmOnly = aNode({ id: 'w' });
    const both = aNode({ id: 'q', drivers: ['wasm', 'qemu'] });
    const x86 = aVm({ id: 'x', node: 'q', load: 1, driver: 'qemu' });
    const plain = aVm({ id: 'p', node: 'w', load: 1 });
    expect(cannotEnter(x86, taker(wasmOnly))).toBe('driver');
    expect(cannotEnter(x86, taker(both))).toBeUndefined();
    expect(cannotEnter(plain, taker(wasmOnly))).toBeUndefined();
    expect(cannotEnter(plain, taker(both))).toBeUndefined();
  });

  it('places a qemu guest only where the driver is offered, and says why elsewhere', () => {
    const vm = placementVmOf({ memPages: 16, guest: { kind: 'qemu:counter' } });
    expect(vm.driver).toBe('qemu');
    expect(placementVmOf({ memPages: 16, guest: { kind: 'cpu' } }).driver).toBeUndefined();
    const node = (id: string, drivers?: NodeInfo['drivers']) =>
      aPlacementNode(id, drivers ? { drivers } : {}, NOW);
    // The emptiest node lacks the driver: placement must pass it over.
    const busy = {
      ...node('q', ['wasm', 'qemu']),
      vms: [{ factors: { cpu: 2, io: 0, mem: 0 }, memPages: 16 }],
    };
    const placement = placementCandidates([node('w'), busy], vm, NOW);
    expect(placement.candidates.map((c) => c.node)).toEqual(['q']);
    expect(placement.excluded).toEqual([
      { node: 'w', reason: 'driver', detail: 'node w does not offer the qemu driver' },
    ]);
  });

  it('never moves a qemu VM to a node without the driver, whatever the loads (pinned case)', () => {
    // The hot node holds only qemu VMs and the only cold node cannot run them: nothing may move.
    const nodes = [aNode({ id: 'hot', drivers: ['wasm', 'qemu'] }), aNode({ id: 'cold' })];
    const vms = vmsOn('hot', [3, 2, 1], { driver: 'qemu' });
    const decision = decideRound(aRound(nodes, vms), aConfig(), createRng(1));
    expect(decision.pairs.flatMap((p) => p.moves)).toEqual([]);
    // The same cluster with wasm VMs does move: the constraint is what held them.
    const free = decideRound(aRound(nodes, vmsOn('hot', [3, 2, 1])), aConfig(), createRng(1));
    expect(free.pairs.flatMap((p) => p.moves).length).toBeGreaterThan(0);
  });

  it('never moves a qemu VM to a node without the driver, on random clusters', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 2, maxLength: 6 }),
        fc.array(fc.record({ load: fc.integer({ min: 1, max: 9 }), qemu: fc.boolean(), at: fc.nat() }), {
          minLength: 1,
          maxLength: 24,
        }),
        fc.integer({ min: 1, max: 1000 }),
        (offers, specs, seed) => {
          const nodes = offers.map((q, i) =>
            aNode({ id: `n${i}`, ...(q ? { drivers: ['wasm', 'qemu'] } : {}) }),
          );
          const qemuNodes = nodes.filter((n) => n.drivers?.includes('qemu'));
          const vms = specs.map((s, i) => {
            const home = s.qemu && qemuNodes.length ? qemuNodes : nodes;
            const node = home[s.at % home.length] as NodeInfo;
            return aVm({
              id: `v${i}`,
              node: node.id,
              load: s.load,
              ...(s.qemu && qemuNodes.length ? { driver: 'qemu' as const } : {}),
            });
          });
          const byId = new Map(vms.map((v) => [v.id, v]));
          const offersQemu = new Set(qemuNodes.map((n) => n.id));
          const d = decideRound(aRound(nodes, vms), aConfig(), createRng(seed));
          for (const move of d.pairs.flatMap((p) => p.moves))
            if (byId.get(move.vm)?.driver === 'qemu') expect(offersQemu.has(move.to)).toBe(true);
        },
      ),
    );
  });
});
