// Swaps and mirrors must buy something. A swap never moves a net load within the exceeds test's margin.
// A mirror (shared/domain/mirror.ts) is never a trade that leaves both loads where they were (two VMs
// of one size), never one that unlocks an exchange the next round would not make, and
// never while several nodes share the maximum. Each of these once let a small shard migrate round
// after round without ever lowering its maximum.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng, randomInt } from '../../../shared/domain/rng.ts';
import { simulate } from '../../../shared/sim/simulate.ts';
import type { Scenario } from '../../../shared/sim/types.ts';
import { aNode, aRound, aVm } from '../domain/fixtures.ts';

const config = { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0 };

/** Node i holds VMs of the sizes in the i-th part of `layout` ('2 2 4 6 | 9'). */
function placed(layout: string): Scenario {
  const placement = layout.split('|').map((node) => node.trim().split(' ').map(Number));
  const nodes = placement.map((_, i) => aNode({ id: `n${i}`, capacity: 100 }));
  const vms = placement.flatMap((sizes, i) =>
    sizes.map((load, k) => aVm({ id: `v${i}-${k}`, node: `n${i}`, load })),
  );
  return { name: layout, nodes, vms };
}

/** Migrations per round over `rounds` rounds of the defaults. */
function migrationsPerRound(s: Scenario, rounds: number, seed = 1): number[] {
  const { series } = simulate(s, { rounds, seed, config, intervalMs: 60_000, greedy: false });
  return series.seesaw.slice(1).map((p, i) => p.migrations - (series.seesaw[i]?.migrations ?? 0));
}

describe('swaps', () => {
  it('never trade VMs of about one size', () => {
    // 18 (9 9) / 9.99 (8.99 0.5 0.5): no single VM helps (each is 8.01 or more). A 9 for the 8.99
    // shrinks the gap by 0.02 for two migrations, and used to be taken as the first one-for-one swap
    // that helps. Now the swap is the 9 for the two 0.5s: 10 / 17.99.
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b' })];
    const vms = [
      aVm({ id: 'a-0', node: 'a', load: 9 }),
      aVm({ id: 'a-1', node: 'a', load: 9 }),
      aVm({ id: 'b-0', node: 'b', load: 8.99 }),
      aVm({ id: 'b-1', node: 'b', load: 0.5 }),
      aVm({ id: 'b-2', node: 'b', load: 0.5 }),
    ];
    const d = decideRound(aRound(nodes, vms), config, createRng(1));
    expect(d.moves.map((m) => m.loadOnSource).sort()).toEqual([0.5, 0.5, 9]);
    expect(d.pairs[0]?.predicted.requester).toBeCloseTo(10, 9);
    expect(d.pairs[0]?.predicted.selected).toBeCloseTo(17.99, 9);
  });
});

describe('mirrors', () => {
  it('never trade two VMs of one size', () => {
    // 14 / 9 / 17 / 13: n2 (8 9) is stalled. n0 (2 2 4 6) and n3 (9 4) used to trade their 4s
    // (14 / 13 → 14 / 13), since n2 could swap its 8 for n0's 6 afterwards, as it could before.
    const s = placed('2 2 4 6 | 9 | 8 9 | 9 4');
    const expected = { n0: 14, n1: 9, n2: 17, n3: 13 };
    const d = decideRound(aRound(s.nodes, s.vms, { round: 2, expected }), config, createRng(1));
    for (const p of d.pairs) {
      if (p.moves.length === 0) continue;
      expect(Math.abs(p.predicted.requester - p.loads.requester)).toBeGreaterThan(config.margin);
      expect(Math.abs(p.predicted.selected - p.loads.selected)).toBeGreaterThan(config.margin);
    }
  });

  it.each([
    ['2 2 4 6 | 9 | 8 9 | 9 4', 14],
    ['9 | 3 8 | 7 8 | 2 7 3', 14],
    ['6 9 | 9 | 6 8 | 9 8', 17],
    ['6 6 | 6 6 | 4 1 3 2 | 6 2 4', 12],
  ])('let %s settle (maximum %d) instead of trading on', (layout, max) => {
    // Each once migrated two or three VMs every round for ever. The last is already at the optimum
    // (three nodes at 12); the third can do nothing without passing its maximum through a mirror.
    const perRound = migrationsPerRound(placed(layout), 12);
    expect(perRound.slice(4)).toEqual(new Array(8).fill(0));
    const { result } = simulate(placed(layout), {
      rounds: 12,
      seed: 1,
      config,
      intervalMs: 60_000,
      greedy: false,
    });
    expect(result.final.maxLoad).toBe(max);
  });

  it('stop on random small coarse clusters once nothing improves', () => {
    // 3–5 nodes, 6–11 VMs of sizes 1–9: no cluster still migrates after round 12 of 20. Before, 2 of
    // these 300 (seeds 235 and 268; 40 of 2,000) traded on for ever.
    const churning: number[] = [];
    for (let seed = 1; seed <= 300; seed++) {
      const rng = createRng(seed);
      const n = 3 + randomInt(rng, 3);
      const count = 6 + randomInt(rng, 6);
      const nodes = Array.from({ length: n }, (_, i) => aNode({ id: `n${i}`, capacity: 100 }));
      const vms = Array.from({ length: count }, (_, i) =>
        aVm({ id: `v${i}`, node: `n${randomInt(rng, n)}`, load: 1 + randomInt(rng, 9) }),
      );
      const perRound = migrationsPerRound({ name: `coarse-${seed}`, nodes, vms }, 20, seed);
      if (perRound.slice(12).some((m) => m > 0)) churning.push(seed);
    }
    expect(churning).toEqual([]);
  });
});
