// Rounds found against the mutants of shared/domain/decide.ts that outlived the sixth mutation pass
// (2026-12-01, see docs/development.md), then pinned. They pin the rules as they stand: a change of a
// rule must change them on purpose.
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, vmsOnEach } from './fixtures.ts';

/** Each pair's decision as `requester-selected code`, in the order carried out (RNG seed 1). */
function served(loads: Record<string, number[]>, ids: string[], config: BalancingConfig): string[] {
  const d = decideRound(
    aRound(
      ids.map((id) => aNode({ id })),
      vmsOnEach(loads),
    ),
    config,
    createRng(1),
  );
  return d.pairs.map((p) => `${p.requester}-${p.selected} ${p.reason.code}`);
}

describe('the order pairs are served in', () => {
  it('serves pairs of equal gaps in the order the pairing gave them (the sort is stable)', () => {
    // Spread pairs n0 with n1 first, then n2 with n3: both gaps are 2, and the one migration the
    // cluster allows goes to the pair listed first.
    const config = aConfig({ pairing: 'spread', maxMigrationsPerCluster: 1 });
    expect(served({ n0: [1, 1], n2: [1, 1] }, ['n0', 'n1', 'n2', 'n3'], config)).toEqual([
      'n0-n1 moved',
      'n2-n3 limit',
    ]);
  });
});
