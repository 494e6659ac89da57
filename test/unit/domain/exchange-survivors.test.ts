// Rounds found by a random search of small clusters against the mutants of shared/domain/exchange.ts
// that outlived the whole-file mutation run of 2026-12-01 (fifth pass, see docs/development.md), then
// pinned: the bookkeeping of the VMs the giver sheds anyway after each move, the swap's condition that
// the taker be below the mean, and the loads a one-VM move before a swap reports. They pin the rules as
// they stand: a change of a rule must change them on purpose.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, NodeInfo, VmInfo, Weights } from '../../../shared/domain/types.ts';
import { aNode, aRound, aVm, vmsOn } from './fixtures.ts';

const base = { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0, withRandom: false };

/** Each pair's decision as `requester-selected code: detail`, in the order carried out. */
function decided(nodes: NodeInfo[], vms: VmInfo[], config: BalancingConfig): string[] {
  const d = decideRound(aRound(nodes, vms), config, createRng(1));
  return d.pairs.map((p) => `${p.requester}-${p.selected} ${p.reason.code}: ${p.reason.detail}`);
}

/** `decided` on nodes with default weights, each holding VMs of the listed loads. */
function decidedOn(sizes: [string, number[]][], config: BalancingConfig): string[] {
  return decided(
    sizes.map(([id]) => aNode({ id })),
    sizes.flatMap(([id, s]) => vmsOn(id, s)),
    config,
  );
}

/** VMs on `node` with [cpu, io] factors. */
function vmsWith(node: string, factors: [number, number][]): VmInfo[] {
  return factors.map(([cpu, io], i) => aVm({ id: `${node}-${i}`, node, factors: { cpu, io, mem: 0 } }));
}

describe('an exchange’s later moves and its close', () => {
  it('counts down the VMs shed anyway only when one of them went, and counts them again otherwise (weights differ)', () => {
    const CPU: Weights = { cpu: 1, io: 0, mem: 0 };
    const nodes = [
      aNode({ id: 'n0', weights: CPU }),
      aNode({ id: 'n1', weights: { cpu: 1, io: 1, mem: 0 } }),
      aNode({ id: 'n2', weights: { cpu: 0.5, io: 1, mem: 0 } }),
      aNode({ id: 'n3', weights: CPU }),
    ];
    const vms = [
      ...vmsWith('n0', [
        [8, 0.05],
        [1, 0.05],
        [2, 0.05],
        [10, 10],
        [1, 0],
        [6, 6],
        [6, 0.05],
        [1, 1],
        [7, 7],
      ]),
      ...vmsWith('n1', [
        [1, 0.05],
        [2.25, 0],
        [0.75, 0.75],
        [0.75, 0.75],
      ]),
      ...vmsWith('n2', [
        [1, 0],
        [4, 0],
        [1, 0.05],
        [5, 0],
        [3.5, 0],
        [2, 0.05],
        [2, 0],
        [4, 0.05],
        [1, 0],
        [4, 4],
        [4.5, 4.5],
        [5.5, 0.05],
        [0.5, 0.05],
        [2, 0.05],
        [3.5, 3.5],
        [3.5, 3.5],
        [2, 2],
        [1.5, 0.05],
        [0.5, 0],
        [4, 0],
        [3, 0.05],
      ]),
      ...vmsWith('n3', [
        [1, 1],
        [3, 0],
        [1.5, 0],
        [1, 0],
      ]),
    ];
    expect(decided(nodes, vms, { ...base, maxMigrationsPerNode: 3 })).toEqual([
      'n0-n3 moved: n0 gave 2 VM(s), load 16, to n3: 42/6.500 → 26/22.500',
      'n2-n1 moved: n2 gave 3 VM(s), load 15, to n1: 46.900/6.300 → 31.900/26.300',
    ]);
  });

  it('trades VMs only with a taker below the mean', () => {
    // Mean 9.125: n3 (10) is above it, so n5 (12) and n3 do not swap a 4 for a 3 although it would even them.
    const sizes: [string, number[]][] = [
      ['n0', [0.5, 1, 1, 1.5, 0.75, 1, 0.75, 1.25, 1.75, 1, 0.75, 1.5, 1.25]],
      ['n1', [0.25, 1.5, 0.5, 1.5]],
      ['n2', [2.5, 4.5, 6]],
      ['n3', [6, 1, 3]],
      ['n4', [2]],
      ['n5', [8, 4]],
    ];
    expect(decidedOn(sizes, { ...base, maxMigrationsPerNode: 2 })).toEqual([
      'n2-n1 moved: n2 gave 1 VM(s), load 4.500, to n1: 13/3.750 → 8.500/8.250',
      'n0-n4 moved: n0 gave 2 VM(s), load 3.250, to n4: 14/2 → 10.750/5.250',
      "n5-n3 no-gain: none of 2 movable VM(s) of n5 brings 12 vs 10 closer without raising the pair's maximum",
    ]);
  });

  it('reports the loads after the one VM it moves instead of a swap', () => {
    const sizes: [string, number[]][] = [
      [
        'n0',
        [2, 2, 3, 1, 2, 1.25, 2, 2.5, 0.5, 1.25, 0.25, 1, 0.25, 1.25, 1, 0.5, 1.25, 0.75, 2.5, 1.75, 0.25],
      ],
      ['n1', [2, 5, 1, 7, 1, 3, 2]],
      ['n2', [1, 3, 5, 2, 3, 6, 5]],
      ['n3', [2, 1, 6, 1, 3, 8, 1]],
      ['n4', []],
      ['n5', [2, 1, 4, 3, 1, 2, 3, 1, 1, 5, 4]],
      ['n6', [2.5, 2.5, 5, 5, 0.5, 2, 0.5]],
    ];
    expect(decidedOn(sizes, { ...base, maxMigrationsPerNode: 8 })).toEqual([
      'n0-n4 moved: n0 gave 3 VM(s), load 8, to n4: 28.250/0 → 20.250/8',
      'n5-n6 moved: n5 gave 1 VM(s), load 4, to n6: 27/18 → 23/22',
      'n2-n1 moved: n2 gave 1 VM(s), load 1, to n1: 25/21 → 24/22',
    ]);
  });
});
