// Placement in the domain: the balancer's constraints wherever a VM is placed, and the balancer's
// notion of load, so the balancer does not undo a placement it did not need to.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { vmLoad } from '../../../shared/domain/load.ts';
import {
  bestPlacement,
  expectedFactors,
  isLive,
  type PlacementNode,
  type PlacementVm,
  placementCandidates,
} from '../../../shared/domain/placement.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { improves } from '../../../shared/domain/selection.ts';
import type { VmInfo, Weights } from '../../../shared/domain/types.ts';
import { aPlacementNode as aNode } from './fixtures.ts';

const NOW = 1_000_000;
const cpu = (load: number, group?: string) => ({
  factors: { cpu: load, io: 0, mem: 0 },
  memPages: 16,
  ...(group !== undefined ? { group } : {}),
});
const aVm = (load: number, over: Partial<PlacementVm> = {}): PlacementVm => ({ ...cpu(load), ...over });

describe('placementCandidates', () => {
  it('is live while the lease has not lapsed', () => {
    expect(isLive({ leaseUntil: NOW }, NOW)).toBe(true);
    expect(isLive({ leaseUntil: NOW - 1 }, NOW)).toBe(false);
  });

  it('leaves out dead, draining, full and same-group nodes, each with its reason', () => {
    const nodes = [
      aNode('dead', { leaseUntil: NOW - 1 }),
      aNode('drain', { draining: true }),
      aNode('full', { memCapacityPages: 20, vms: [cpu(0.1)] }),
      aNode('group', { vms: [cpu(0.1, 'db')] }),
      aNode('ok', { vms: [cpu(3)] }),
    ];
    const { candidates, excluded } = placementCandidates(nodes, aVm(0.5, { group: 'db' }), NOW);
    expect(candidates.map((c) => c.node)).toEqual(['ok']);
    expect(excluded.map((e) => [e.node, e.reason])).toEqual([
      ['dead', 'dead'],
      ['drain', 'draining'],
      ['full', 'memory'],
      ['group', 'anti-affinity'],
    ]);
    expect(excluded[3]?.detail).toBe('node group already runs a VM of anti-affinity group db');
  });

  it('never offers the node a VM leaves, and offers nothing for a pinned VM that would leave', () => {
    const nodes = [aNode('a'), aNode('b')];
    expect(placementCandidates(nodes, aVm(1, { leaving: 'a' }), NOW).candidates.map((c) => c.node)).toEqual([
      'b',
    ]);
    const pinned = placementCandidates(nodes, aVm(1, { leaving: 'a', pinned: true }), NOW);
    expect(pinned.candidates).toEqual([]);
    expect(pinned.excluded.map((e) => e.reason)).toEqual(['current', 'pinned']);
  });

  it('ranks by load under each node’s own weights, not by raw factors', () => {
    // Raw CPU: a holds 1.0, b holds 0.6. Under their weights a carries 1.0 and b 1.2, and the new VM
    // adds 0.5 on a but 1.0 on b (b's CPU is twice as expensive).
    const nodes = [
      aNode('a', { vms: [cpu(1)] }),
      aNode('b', { weights: { cpu: 2, io: 0, mem: 0 }, vms: [cpu(0.6)] }),
    ];
    const { candidates } = placementCandidates(nodes, aVm(0.5), NOW);
    expect(candidates).toEqual([
      { node: 'a', load: 1, loadAfter: 1.5 },
      { node: 'b', load: 1.2, loadAfter: 2.2 },
    ]);
  });

  it('honours a load override, as the balancer does', () => {
    const nodes = [aNode('a'), aNode('b', { loadOverride: 9 })];
    expect(bestPlacement(nodes, aVm(1), NOW)).toBe('a');
    expect(bestPlacement([aNode('a', { loadOverride: 9 }), aNode('b', { vms: [cpu(2)] })], aVm(1), NOW)).toBe(
      'b',
    );
  });

  it('prefers a named node when it may take the VM, else the best', () => {
    const nodes = [aNode('a', { vms: [cpu(3)] }), aNode('b'), aNode('c', { draining: true })];
    expect(bestPlacement(nodes, aVm(1), NOW, ['c', 'a'])).toBe('a');
    expect(bestPlacement(nodes, aVm(1), NOW, ['c'])).toBe('b');
    expect(bestPlacement([], aVm(1), NOW)).toBeUndefined();
  });

  it('puts the first preferred node that may take the VM first, and keeps the rest best first', () => {
    const nodes = [
      aNode('a', { vms: [cpu(3)] }),
      aNode('b'),
      aNode('c', { vms: [cpu(1)] }),
      aNode('d', { draining: true }),
    ];
    const order = (prefer?: string[]) =>
      placementCandidates(nodes, aVm(1), NOW, { prefer }).candidates.map((c) => c.node);
    expect(order()).toEqual(['b', 'c', 'a']);
    expect(order(['a'])).toEqual(['a', 'b', 'c']);
    expect(order(['d', 'c', 'a'])).toEqual(['c', 'b', 'a']);
    expect(order(['d', 'x'])).toEqual(['b', 'c', 'a']);
    expect(placementCandidates(nodes, aVm(1), NOW, { prefer: ['d'] }).excluded.map((e) => e.node)).toEqual([
      'd',
    ]);
  });

  it('only reorders: a preference never adds, drops or excludes a node', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ load: fc.double({ min: 0, max: 4, noNaN: true }), draining: fc.boolean() }), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.array(fc.nat(7), { maxLength: 3 }),
        (specs, picks) => {
          const nodes = specs.map((s, i) => aNode(`n${i}`, { draining: s.draining, vms: [cpu(s.load)] }));
          const prefer = picks.map((i) => `n${i}`);
          const plain = placementCandidates(nodes, aVm(1), NOW);
          const preferred = placementCandidates(nodes, aVm(1), NOW, { prefer });
          const ids = (p: typeof plain) => p.candidates.map((c) => c.node);
          expect(preferred.excluded).toEqual(plain.excluded);
          const first = prefer.find((id) => ids(plain).includes(id));
          const expected =
            first === undefined ? ids(plain) : [first, ...ids(plain).filter((id) => id !== first)];
          expect(ids(preferred)).toEqual(expected);
        },
      ),
    );
  });

  it('expects a new VM to use its CPU limit, or a whole core without one', () => {
    expect(expectedFactors({ memPages: 16, cpuLimit: 0.5 }).cpu).toBe(0.5);
    expect(expectedFactors({ memPages: 16 })).toEqual({ cpu: 1, io: 0, mem: 16 / 16_384 });
  });
});

/** The balancer's next decision, with the placed VM added where placement put it. */
function nextMovesOf(nodes: PlacementNode[], placed: PlacementVm, seed: number) {
  const to = bestPlacement(nodes, placed, NOW) as string;
  const vms: VmInfo[] = nodes.flatMap((n) =>
    n.vms.map((vm, i) => ({ id: `${n.id}-${i}`, node: n.id, pinned: false, ...vm })),
  );
  vms.push({ id: 'new', node: to, pinned: false, ...placed });
  const input = { nodes, vms, round: 0, now: NOW };
  // Swaps are left out: placement chooses the node no single move would take the VM from, but a swap
  // (give it, take a smaller one back) can still even the pair further; a new VM's first cooldown is
  // what keeps it in place against those.
  return decideRound(input, DEFAULT_BALANCING_CONFIG, createRng(seed)).pairs.flatMap((p) =>
    p.moves.some((m) => m.from === p.selected) && p.moves.some((m) => m.from === p.requester) ? [] : p.moves,
  );
}

describe('a placed VM stays where placement put it', () => {
  it('a new VM on a heterogeneous cluster is not moved by the next decision', () => {
    // Raw CPU would choose c (0.9); under the weights a would reach 1.7, b 1.6 and c 2.8.
    const nodes = [
      aNode('a', { vms: [cpu(1), cpu(0.2)] }),
      aNode('b', { weights: { cpu: 0.8, io: 0, mem: 0 }, vms: [cpu(1.5)] }),
      aNode('c', { weights: { cpu: 2, io: 0, mem: 0 }, vms: [cpu(0.9)] }),
    ];
    const placed = aVm(0.5, {});
    expect(bestPlacement(nodes, placed, NOW)).toBe('b');
    for (let seed = 1; seed <= 20; seed++)
      expect(nextMovesOf(nodes, placed, seed).some((m) => m.vm === 'new')).toBe(false);
  });

  it('breaks a tie hidden by rounding towards the node that carries less now', () => {
    // 0.56 + 0.24 and 0.2 + 0.6 are both 0.8 but differ in the last bit; placing the VM on n0 let the
    // balancer move it to n1 at once (found by the property below; kept as a pinned example).
    const nodes = [
      aNode('n0', { weights: { cpu: 0.8, io: 0, mem: 0 }, vms: [cpu(0.7)] }),
      aNode('n1', { weights: { cpu: 2, io: 0, mem: 0 }, vms: [cpu(0.1)] }),
    ];
    expect(bestPlacement(nodes, aVm(0.3), NOW)).toBe('n1');
    expect(nextMovesOf(nodes, aVm(0.3), 1).some((m) => m.vm === 'new')).toBe(false);
  });

  it('keeps a new VM in its first cooldown out of a swap that would even the pair', () => {
    // Found once swaps arrived: placed on n1 (0.95 vs n0's 0.85), the VM of 0.25 swaps with n0's
    // 0.2 to make 0.9 / 0.9. No single move does that; the first cooldown the API gives a new VM does.
    const half = { cpu: 0.5, io: 0, mem: 0 };
    const nodes = [
      aNode('n0', { weights: half, vms: [cpu(1.3), cpu(0.4)] }),
      aNode('n1', { weights: half, vms: [cpu(0.7), cpu(0.7)] }),
    ];
    const placed = aVm(0.5);
    expect(bestPlacement(nodes, placed, NOW)).toBe('n1');
    const vms: VmInfo[] = nodes.flatMap((n) =>
      n.vms.map((vm, i) => ({ id: `${n.id}-${i}`, node: n.id, pinned: false, ...vm })),
    );
    vms.push({ id: 'new', node: 'n1', pinned: false, ...placed, cooldownUntil: NOW + 60_000 });
    for (let seed = 1; seed <= 10; seed++) {
      const moves = decideRound(
        { nodes, vms, round: 0, now: NOW },
        DEFAULT_BALANCING_CONFIG,
        createRng(seed),
      ).moves;
      expect(moves.some((m) => m.vm === 'new')).toBe(false);
    }
  });

  it('leaves no single move of the placed VM that the balancer would count as an improvement', () => {
    // The law behind "the balancer leaves it": from the chosen node, moving the VM to any other
    // candidate never passes improves() (it would raise the pair's maximum or widen its gap).
    const weights = fc.record({
      cpu: fc.constantFrom(0.5, 0.8, 1, 1.25, 2),
      io: fc.constant(0),
      mem: fc.constant(0),
    });
    const node = fc.record({
      weights: weights as fc.Arbitrary<Weights>,
      loads: fc.array(
        fc.integer({ min: 1, max: 20 }).map((x) => x / 10),
        { maxLength: 5 },
      ),
    });
    fc.assert(
      fc.property(
        fc.array(node, { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 1, max: 20 }).map((x) => x / 10),
        (specs, load) => {
          const nodes = specs.map((s, i) =>
            aNode(`n${i}`, { weights: s.weights, vms: s.loads.map((l) => cpu(l)) }),
          );
          const placed = aVm(load);
          const { candidates } = placementCandidates(nodes, placed, NOW);
          const [best, ...others] = candidates;
          if (!best) return false;
          const onBest = vmLoad(placed.factors, nodes.find((n) => n.id === best.node)?.weights as Weights);
          return others.every(
            (other) =>
              !improves(
                {
                  vm: { id: 'new', node: best.node, pinned: false, ...placed },
                  loadOnSource: onBest,
                  loadOnTarget: other.loadAfter - other.load,
                },
                { giverLoad: best.loadAfter, takerLoad: other.load, aimGap: 0 },
              ),
          );
        },
      ),
      { numRuns: 500 },
    );
  });
});
