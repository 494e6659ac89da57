// Draining nodes in one round: which VMs they give, to whom, how many, and what each decision says.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, NodeInfo, RoundDecision, RoundInput } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, drainingNodes, vmsOn, vmsOnEach } from './fixtures.ts';

const decide = (input: RoundInput, config: Partial<BalancingConfig> = {}) =>
  decideRound(input, aConfig({ maxMigrationsPerNode: 10, ...config }), createRng(1));

const pairsOf = (d: RoundDecision, node: string) =>
  d.pairs.filter((p) => p.requester === node || p.selected === node);

/** Every VM moves at most once a round, and from the node it was on as the round started. */
function movesOnce(input: RoundInput, d: RoundDecision) {
  const ids = d.moves.map((m) => m.vm);
  expect(new Set(ids).size, `moves ${ids.join(', ')}`).toBe(ids.length);
  const home = new Map(input.vms.map((vm) => [vm.id, vm.node]));
  for (const m of d.moves) expect(m.from).toBe(home.get(m.vm));
}

describe('a draining node spread over several receivers', () => {
  // a (draining) holds six VMs of 1; b, c and d carry 2 each, so the mean of the receivers is 4.
  const input = aRound(
    drainingNodes('a', 'b', 'c', 'd'),
    vmsOnEach({ a: [1, 1, 1, 1, 1, 1], b: [2], c: [2], d: [2] }),
  );

  it('gives each of its VMs exactly once, two to each receiver', () => {
    const d = decide(input);
    movesOnce(input, d);
    expect(d.moves.map((m) => m.vm).sort()).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'a-5']);
    for (const to of ['b', 'c', 'd']) expect(d.moves.filter((m) => m.to === to)).toHaveLength(2);
    expect(d.expected).toMatchObject({ a: 0, b: 4, c: 4, d: 4 });
  });

  it('says after each exchange how many VMs are left on it', () => {
    const details = pairsOf(decide(input), 'a').map((p) => p.reason.detail);
    expect(details).toHaveLength(3);
    expect(details[0]).toMatch(/^a is draining: gave 2 VM\(s\) to [bcd], 4 left$/);
    expect(details[1]).toMatch(/, 2 left$/);
    expect(details[2]).toMatch(/, 0 left$/);
  });
});

describe('what a draining node gives first', () => {
  it('gives its largest VM first, then fills each receiver only up to the mean', () => {
    // VMs 1, 5 and 3 over two empty receivers: mean 4.5. b takes the 5 (always one VM) and nothing
    // more (5 + 3 and 5 + 1 pass the mean); c takes the 3 and then the 1 (4 ≤ 4.5).
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' }), aNode({ id: 'c' })],
      vmsOn('a', [1, 5, 3]),
    );
    const d = decide(input);
    movesOnce(input, d);
    expect(d.moves.map((m) => [m.vm, m.to])).toEqual([
      ['a-1', 'b'],
      ['a-2', 'c'],
      ['a-0', 'c'],
    ]);
  });

  it('gives to the least loaded receiver first', () => {
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' }), aNode({ id: 'c' })],
      [...vmsOn('a', [4]), ...vmsOn('b', [9]), ...vmsOn('c', [2])],
    );
    expect(decide(input).moves.map((m) => m.to)).toEqual(['c']);
  });
});

describe('a draining node and the migration limits', () => {
  it('gives no more VMs than its own limit allows, and says the limit stopped it', () => {
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('a', [1, 1, 1]));
    const d = decide(input, { maxMigrationsPerNode: 2 });
    expect(d.moves).toHaveLength(2);
    expect(pairsOf(d, 'a')[0]?.reason.detail).toBe(
      'a is draining: gave 2 VM(s) to b, 1 left (migration limit)',
    );
  });

  it('does not mention the limit when it gave everything it could', () => {
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('a', [1, 1]));
    expect(pairsOf(decide(input), 'a')[0]?.reason.detail).toBe('a is draining: gave 2 VM(s) to b, 0 left');
  });

  it('stays out of the round while its in-flight migrations fill its limit', () => {
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('a', [1, 1]), {
      inFlight: { a: 2 },
    });
    const d = decide(input, { maxMigrationsPerNode: 2 });
    expect(d.moves).toEqual([]);
    expect(d.pairs).toEqual([]);
    expect(d.skipped.map((s) => s.node)).toEqual(['a']);
  });

  it('gives nothing to a receiver whose in-flight migrations fill its limit', () => {
    // b is the least loaded but busy to its limit: c and d take one VM each.
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' }), aNode({ id: 'c' }), aNode({ id: 'd' })],
      [...vmsOn('a', [1, 1]), ...vmsOn('c', [1]), ...vmsOn('d', [1])],
      { inFlight: { b: 2 } },
    );
    const d = decide(input, { maxMigrationsPerNode: 2 });
    expect(d.moves.map((m) => m.to).sort()).toEqual(['c', 'd']);
  });

  it('says so when no receiver has budget left', () => {
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('a', [1]), {
      inFlight: { b: 2 },
    });
    const d = decide(input, { maxMigrationsPerNode: 2 });
    expect(d.moves).toEqual([]);
    expect(d.skipped).toContainEqual({
      node: 'a',
      reason: 'draining, but no node in the round may receive its VMs',
    });
  });

  it('stops at the cluster limit', () => {
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' }), aNode({ id: 'c' })],
      vmsOn('a', [1, 1, 1, 1]),
    );
    expect(decide(input, { maxMigrationsPerCluster: 3 }).moves).toHaveLength(3);
  });
});

describe('a draining node whose VMs may not go', () => {
  it('adds no decision when it is already empty', () => {
    const input = aRound([aNode({ id: 'a', draining: true }), aNode({ id: 'b' })], vmsOn('b', [1]));
    const d = decide(input);
    expect(pairsOf(d, 'a')).toEqual([]);
    expect(d.skipped).toEqual([]);
  });

  it('counts the VMs that may not leave, by reason', () => {
    const input = aRound(
      [aNode({ id: 'a', draining: true }), aNode({ id: 'b' })],
      [
        aVm({ id: 'p1', node: 'a', pinned: true }),
        aVm({ id: 'p2', node: 'a', pinned: true }),
        aVm({ id: 'x', node: 'a', busy: true }),
      ],
    );
    const [only, ...rest] = pairsOf(decide(input), 'a');
    expect(rest).toEqual([]);
    expect(only?.reason).toEqual({
      code: 'draining',
      detail: 'a is draining but no VM may move to b: 2 pinned, 1 busy',
    });
  });

  it('tries the next receiver when one may take none of its VMs, and keeps one line for the refusal', () => {
    // b is the least loaded but already holds group g; c takes one VM of g, then none more.
    const vms = [
      ...vmsOn('a', [1, 1], { group: 'g' }),
      aVm({ id: 'bg', node: 'b', load: 1, group: 'g' }),
      ...vmsOnEach({ c: [2], d: [2] }),
    ];
    const d = decide(aRound(drainingNodes('a', 'b', 'c', 'd'), vms), { pairing: 'round-robin' });
    const mine = pairsOf(d, 'a');
    expect(mine.map((p) => [p.selected, p.reason.code, p.moves.length])).toEqual([
      ['b', 'draining', 0],
      ['c', 'moved', 1],
      ['d', 'moved', 1],
    ]);
    expect(mine[0]?.reason.detail).toBe('a is draining but no VM may move to b: 2 anti-affinity');
  });

  it('keeps only the exchanges that moved once it has moved something', () => {
    // c is least loaded and takes one VM of g; b and d already hold g and take nothing.
    const vms = [
      ...vmsOn('a', [1, 1], { group: 'g' }),
      aVm({ id: 'bg', node: 'b', load: 2, group: 'g' }),
      aVm({ id: 'dg', node: 'd', load: 3, group: 'g' }),
    ];
    const d = decide(aRound(drainingNodes('a', 'b', 'c', 'd'), vms), { pairing: 'round-robin' });
    expect(pairsOf(d, 'a').map((p) => [p.selected, p.reason.code])).toEqual([['c', 'moved']]);
    expect(d.moves.map((m) => m.to)).toEqual(['c']);
  });
});

describe('every VM moves at most once a round', () => {
  const clusterArb = fc
    .record({
      nodeCount: fc.integer({ min: 2, max: 5 }),
      vms: fc.array(fc.record({ node: fc.nat(4), load: fc.integer({ min: 1, max: 6 }) }), { maxLength: 14 }),
      draining: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      perNode: fc.integer({ min: 1, max: 6 }),
    })
    .map(({ nodeCount, vms, draining, perNode }) => {
      const nodes: NodeInfo[] = Array.from({ length: nodeCount }, (_, i) =>
        aNode({ id: `n${i}`, draining: draining[i] === true }),
      );
      const input = aRound(
        nodes,
        vms.map((v, i) => aVm({ id: `v${i}`, node: `n${v.node % nodeCount}`, load: v.load })),
      );
      return { input, perNode };
    });

  it('holds on a drain over three receivers (pinned)', () => {
    const input = aRound(
      [aNode({ id: 'n0', draining: true }), aNode({ id: 'n1' }), aNode({ id: 'n2' }), aNode({ id: 'n3' })],
      vmsOn('n0', [1, 1, 1, 1]),
    );
    movesOnce(input, decide(input));
  });

  it('holds on random clusters with draining nodes, every limit', () => {
    fc.assert(
      fc.property(clusterArb, ({ input, perNode }) => {
        movesOnce(input, decide(input, { maxMigrationsPerNode: perNode }));
      }),
      { numRuns: 300, seed: 15 },
    );
  });
});
