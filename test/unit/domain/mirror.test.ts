// Mirrors (shared/domain/mirror.ts): a stalled tiny shard lets two other nodes trade places when that
// is what lets its most loaded node improve next.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { NodeInfo, VmInfo } from '../../../shared/domain/types.ts';
import { aNode, aRound, vmsOn } from './fixtures.ts';

/** Node i holds VMs of the sizes placement[i]; the last round expected today's loads (noise 0). */
function stalled(placement: number[][]) {
  const nodes: NodeInfo[] = placement.map((_, i) => aNode({ id: `n${i}` }));
  const vms: VmInfo[] = placement.flatMap((sizes, i) => vmsOn(`n${i}`, sizes));
  const expected = Object.fromEntries(
    placement.map((sizes, i) => [`n${i}`, sizes.reduce((a, b) => a + b, 0)]),
  );
  return aRound(nodes, vms, { expected });
}

const config = { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0 };

describe('mirror', () => {
  it('trades places between two other nodes when the most loaded one is stalled (seed 30)', () => {
    // 13 / 14 / 14 / 15: the 15 can do nothing with anyone; after the 13 and the 14 of 7 5 2 swap a 4
    // for the 5 (14 / 13), it can give its 7 and take 4 + 2.
    const d = decideRound(
      stalled([
        [4, 9],
        [2, 4, 8],
        [7, 5, 2],
        [4, 4, 7],
      ]),
      config,
      createRng(1),
    );
    const mirror = d.pairs.find((p) => p.reason.detail.startsWith('mirror:'));
    expect(mirror?.moves.map((m) => m.loadOnSource).sort()).toEqual([4, 5]);
    expect(new Set([mirror?.requester, mirror?.selected])).toEqual(new Set(['n0', 'n2']));
    // The law: the pair's maximum does not rise and its gap does not grow.
    const { loads, predicted } = mirror as NonNullable<typeof mirror>;
    expect(Math.max(predicted.requester, predicted.selected)).toBeLessThanOrEqual(
      Math.max(loads.requester, loads.selected),
    );
    expect(Math.abs(predicted.requester - predicted.selected)).toBeLessThanOrEqual(
      Math.abs(loads.requester - loads.selected),
    );
    // No node in two pairs, and the shard's maximum is untouched this round.
    const ids = d.pairs.flatMap((p) => [p.requester, p.selected]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(d.after.maxLoad).toBe(15);
  });

  it('makes none at the optimum, or when a pair moved', () => {
    // Already at the optimum (14 each): nothing to unlock.
    const even = decideRound(
      stalled([
        [9, 5],
        [2, 4, 8],
        [7, 7],
        [4, 4, 4, 2],
      ]),
      config,
      createRng(1),
    );
    expect(even.moves).toEqual([]);
    // A pair that can still move: the round moves, no mirror.
    const moving = decideRound(stalled([[4, 9, 3], [2, 4, 8], [7, 5, 2], [1]]), config, createRng(1));
    expect(moving.moves.length).toBeGreaterThan(0);
    expect(moving.pairs.some((p) => p.reason.detail.startsWith('mirror:'))).toBe(false);
  });
});
