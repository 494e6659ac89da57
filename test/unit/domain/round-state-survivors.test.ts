// Rounds found against the mutants of shared/domain/round-state.ts that outlived the sixth mutation
// pass (2026-12-01, see docs/development.md), then pinned: each is the smallest case found where the
// mutant's books differ from the round's.
import { describe, expect, it } from 'vitest';
import {
  candidatesFor,
  loadOf,
  loadsLargestFirst,
  nodeOf,
  prepareRound,
  vmsOf,
} from '../../../shared/domain/round-state.ts';
import type { Weights } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, aVm, vmsOn } from './fixtures.ts';

describe('a round whose input lists a node id twice', () => {
  it('counts a VM of a node outside the round on no node', () => {
    // With a twin id the round looks nodes up in a Map, which answers undefined for an unknown id
    // (not −1, as the index of unique ids does): that VM must still count nowhere, not on the second node.
    const input = aRound(
      [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'a' })],
      [aVm({ id: 'a1', node: 'a', load: 1 }), aVm({ id: 'x', node: 'gone', load: 8 })],
    );
    const state = prepareRound(input, aConfig());
    expect([...state.loads]).toEqual([0, 0, 1]);
    expect(loadOf(state, 'b')).toBe(0);
    expect(vmsOf(state, 'b')).toEqual([]);
  });
});

describe('the candidates’ loads largest first', () => {
  it('holds every candidate’s load when a giver has more candidates than the buffer first held (16)', () => {
    const sizes = Array.from({ length: 20 }, (_, k) => k + 1);
    const state = prepareRound(
      aRound([aNode({ id: 'a' }), aNode({ id: 'b' })], vmsOn('a', sizes)),
      aConfig(),
    );
    const { candidates } = candidatesFor(state, nodeOf(state, 'a'), nodeOf(state, 'b'));
    expect([...loadsLargestFirst(state, candidates.slice(0, 3))]).toEqual([3, 2, 1]);
    expect([...loadsLargestFirst(state, candidates)]).toEqual(sizes.toReversed());
  });
});

describe('a candidate’s load on a taker without the giver’s optional weights', () => {
  it('counts a paging or network weight that only one of the two nodes has (the other reads as 0)', () => {
    const factors = { cpu: 1, io: 0, mem: 0, paging: 2, net: 4 };
    const plain: Weights = { cpu: 1, io: 0, mem: 0 };
    const cases: [string, Weights, Weights, number, number][] = [
      ['paging on the giver', { ...plain, paging: 1 }, plain, 3, 1],
      ['paging on the taker', plain, { ...plain, paging: 1 }, 1, 3],
      ['network on the giver', { ...plain, net: 1 }, plain, 5, 1],
      ['network on the taker', plain, { ...plain, net: 1 }, 1, 5],
    ];
    for (const [what, giver, taker, onSource, onTarget] of cases) {
      const nodes = [aNode({ id: 'a', weights: giver }), aNode({ id: 'b', weights: taker })];
      const state = prepareRound(aRound(nodes, [{ ...aVm({ id: 'v', node: 'a' }), factors }]), aConfig());
      const [c] = candidatesFor(state, nodeOf(state, 'a'), nodeOf(state, 'b')).candidates;
      expect([c?.loadOnSource, c?.loadOnTarget], what).toEqual([onSource, onTarget]);
    }
  });
});
