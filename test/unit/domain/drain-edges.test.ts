// Draining nodes at the edges of the round: no receiver, no budget, the cluster limit spent by the
// pairs, and several draining nodes in one round (what each one's decisions and skip lines say).
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, RoundDecision, RoundInput } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, vmsOn } from './fixtures.ts';

const decide = (input: RoundInput, config: Partial<BalancingConfig> = {}) =>
  decideRound(input, aConfig({ maxMigrationsPerNode: 2, ...config }), createRng(1));

const pairsOf = (d: RoundDecision, node: string) =>
  d.pairs.filter((p) => p.requester === node || p.selected === node);

const limitLine = (node: string, n: number) => ({
  node,
  reason: `limit: ${n} migration(s) already in flight`,
});

describe('a draining node that may not give this round', () => {
  it('has only its limit line when its own in-flight migrations fill its limit and no node may receive', () => {
    // Both nodes are busy to their limit: a is skipped for its limit, and not a second time for the drain.
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('a', [1]), {
      inFlight: { a: 2, b: 2 },
    });
    const d = decide(input);
    expect(d.skipped).toEqual([limitLine('a', 2), limitLine('b', 2)]);
    expect(d.pairs).toEqual([]);
  });

  it('says nothing about an empty draining node, even when no node may receive', () => {
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('b', [1]), {
      inFlight: { b: 2 },
    });
    const d = decide(input);
    expect(d.skipped).toEqual([limitLine('b', 2)]);
    expect(d.pairs).toEqual([]);
  });

  it('gives nothing and adds no line once the pairs have spent the cluster limit', () => {
    // b and c pair and move one VM (4 / 0 → 2 / 2): the cluster limit of 1 is spent before the drain.
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' }), aNode({ id: 'c' })],
      [...vmsOn('a', [1]), ...vmsOn('b', [2, 2])],
    );
    const d = decide(input, { maxMigrationsPerCluster: 1 });
    expect(d.moves.map((m) => [m.from, m.to])).toEqual([['b', 'c']]);
    expect(pairsOf(d, 'a')).toEqual([]);
    expect(d.skipped).toEqual([]);
  });
});

describe('two draining nodes in one round', () => {
  it('gives each its own line: the second says why it could give nothing, after the first gave', () => {
    // a gives its VM to b; z holds only a pinned VM, so its one exchange (with b) moves nothing.
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'z', draining: true }), aNode({ id: 'b' })],
      [...vmsOn('a', [1]), aVm({ id: 'z-0', node: 'z', pinned: true })],
    );
    const d = decide(input);
    expect(d.moves.map((m) => [m.vm, m.to])).toEqual([['a-0', 'b']]);
    expect(pairsOf(d, 'z').map((p) => [p.requester, p.selected, p.reason])).toEqual([
      ['z', 'b', { code: 'draining', detail: 'z is draining but no VM may move to b: 1 pinned' }],
    ]);
  });

  it('counts every VM that may not leave, also those past the migration limit', () => {
    // One receiver with room for one migration: the largest movable VM goes and the limit stops the rest.
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' })],
      [...vmsOn('a', [3, 2]), aVm({ id: 'p', node: 'a', load: 1, pinned: true })],
    );
    const d = decide(input, { maxMigrationsPerNode: 1 });
    expect(d.moves.map((m) => m.vm)).toEqual(['a-0']);
    expect(pairsOf(d, 'a')[0]?.reason.detail).toBe(
      'a is draining: gave 1 VM(s) to b, 2 left (migration limit)',
    );
  });

  it('does not blame the limit when the VMs it could not give may not leave anyway', () => {
    // Limit 1: a gives its 3 to b; the pinned 5 (the largest) never counts as stopped by the limit.
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' })],
      [aVm({ id: 'p', node: 'a', load: 5, pinned: true }), aVm({ id: 'm', node: 'a', load: 3 })],
    );
    const d = decide(input, { maxMigrationsPerNode: 1 });
    expect(pairsOf(d, 'a')[0]?.reason.detail).toBe('a is draining: gave 1 VM(s) to b, 1 left');
  });

  it('counts the VMs that may not leave before those the taker refuses', () => {
    // The cooled-down VM is the smaller one; it is still named first.
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' })],
      [
        aVm({ id: 'c', node: 'a', load: 1, cooldownUntil: 2_000_000 }),
        aVm({ id: 'g', node: 'a', load: 5, group: 'g' }),
        aVm({ id: 'bg', node: 'b', load: 1, group: 'g' }),
      ],
    );
    expect(pairsOf(decide(input), 'a')[0]?.reason.detail).toBe(
      'a is draining but no VM may move to b: 1 cooldown, 1 anti-affinity',
    );
  });
});
