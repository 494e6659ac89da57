// Small coarse clusters (3–4 nodes, about 10 VMs of integer sizes): the defaults must reach the
// optimal maximum that brute force finds. Single moves alone stall above it on about half of them;
// two-for-one swaps and a retry of stalled givers get 38 of 40 there, and mirrors the last two.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { createRng, randomInt } from '../../../shared/domain/rng.ts';
import { simulate } from '../../../shared/sim/simulate.ts';
import type { Scenario } from '../../../shared/sim/types.ts';
import { aNode, aVm } from '../domain/fixtures.ts';

/** The least possible maximum node load over all placements (branch and bound). */
function optimalMax(sizes: number[], nodes: number): number {
  const sorted = [...sizes].sort((a, b) => b - a);
  const loads = new Array<number>(nodes).fill(0);
  let best = sorted.reduce((s, x) => s + x, 0);
  const place = (i: number, max: number) => {
    if (max >= best) return;
    if (i === sorted.length) {
      best = max;
      return;
    }
    const seen = new Set<number>();
    for (let n = 0; n < nodes; n++) {
      const l = loads[n] as number;
      if (seen.has(l)) continue; // nodes with equal loads are interchangeable
      seen.add(l);
      loads[n] = l + (sorted[i] as number);
      place(i + 1, Math.max(max, loads[n] as number));
      loads[n] = l;
    }
  };
  place(0, 0);
  return best;
}

function coarse(seed: number): Scenario {
  const rng = createRng(seed);
  const n = 3 + randomInt(rng, 2);
  const count = 8 + randomInt(rng, 4);
  const nodes = Array.from({ length: n }, (_, i) => aNode({ id: `n${i}`, capacity: 100 }));
  const vms = Array.from({ length: count }, (_, i) =>
    aVm({ id: `v${i}`, node: `n${randomInt(rng, n)}`, load: 1 + randomInt(rng, 9) }),
  );
  return { name: `coarse-${seed}`, nodes, vms };
}

function misses(config: typeof DEFAULT_BALANCING_CONFIG) {
  const missed: { seed: number; by: number }[] = [];
  for (let seed = 1; seed <= 40; seed++) {
    const s = coarse(seed);
    const best = optimalMax(
      s.vms.map((v) => v.factors.cpu),
      s.nodes.length,
    );
    const { result } = simulate(s, { rounds: 30, seed, config, intervalMs: 60_000, greedy: false });
    if (result.final.maxLoad > best + 1e-9) missed.push({ seed, by: result.final.maxLoad - best });
  }
  return missed;
}

/** A cluster placed by hand: node i holds the VMs of the sizes in the i-th part of `layout` ('4 6 | 1 1 2 6'). */
function placed(layout: string): Scenario {
  const placement = layout.split('|').map((node) => node.trim().split(' ').map(Number));
  const nodes = placement.map((_, i) => aNode({ id: `n${i}`, capacity: 100 }));
  const vms = placement.flatMap((sizes, i) =>
    sizes.map((load, k) => aVm({ id: `v${i}-${k}`, node: `n${i}`, load })),
  );
  return { name: 'placed', nodes, vms };
}

const finalMax = (s: Scenario) =>
  simulate(s, {
    rounds: 10,
    seed: 1,
    config: { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0 },
    intervalMs: 60_000,
    greedy: false,
  }).result.final.maxLoad;

describe('the defaults on small coarse clusters', () => {
  it('reach the optimal maximum on all 40', () => {
    expect(misses({ ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0 })).toEqual([]);
    // Swaps are what gets there: single moves alone stop above the optimum far more often.
    const single = misses({ ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0, multiVm: false });
    expect(single.length).toBeGreaterThan(5);
  });

  // Seed 13 stalled at 10 / 10 / 11 / 8: the 10 of 1 1 2 6 gives its 2 to the 8 (a mirror, 10 / 8 →
  // 8 / 10), then the 11 gives its 4 and takes 1 + 1 from it. Seed 30 stalled at 13 / 14 / 14 / 15: the
  // 13 and a 14 swap a 4 for a 5 (14 / 13), then the 15 gives its 7 and takes 4 + 2 from the 13.
  const mirrored: [number, string, number][] = [
    [13, '4 6 | 1 1 2 6 | 7 4 | 8', 10],
    [30, '4 9 | 2 4 8 | 7 5 2 | 4 4 7', 14],
  ];
  it.each(mirrored)('get past a stall only a mirror opens (seed %i)', (_seed, layout, optimum) => {
    expect(finalMax(placed(layout))).toBe(optimum);
  });

  it('finish with a two-for-one swap where one-for-one swaps stalled (seeds 14 and 21)', () => {
    // 14/13/11: 14 gives a 4 and takes 1 + 1 from 11. 17/16/14: 17 gives a 9 and takes 4 + 4.
    expect(finalMax(placed('4 4 6 | 4 9 | 1 8 1 1'))).toBe(13);
    expect(finalMax(placed('4 4 9 | 9 7 | 4 4 5 1'))).toBe(16);
  });

  it('let a stalled giver try another partner (seed 26)', () => {
    // Spread pairing puts 12 with 9 every round, where nothing helps; 12 swaps its 7 for the 6 of a 10.
    expect(finalMax(placed('8 1 | 1 1 8 | 6 1 3 | 5 7'))).toBe(11);
  });

  it('brute force itself is right on a case worked by hand', () => {
    // 9, 5, 4, 3, 3 on two nodes: 12 / 12.
    expect(optimalMax([9, 5, 4, 3, 3], 2)).toBe(12);
    expect(optimalMax([4, 4, 4], 3)).toBe(4);
  });
});
