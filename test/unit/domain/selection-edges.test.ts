// The selection law at its edges (a maximum kept equal, a gap mirrored, the aim) and each rule's
// choice on small pinned cases, for single moves and swaps.
import { describe, expect, it } from 'vitest';
import {
  type Candidate,
  type ExchangeState,
  improves,
  MULTI_SWAP_LIMIT,
  selectSwap,
  selectVm,
  swapImproves,
} from '../../../shared/domain/selection.ts';
import { aVm } from './fixtures.ts';

let n = 0;
/** A candidate shedding `source` from its node and adding `target` to the other (target defaults to source). */
const cand = (source: number, target = source, targetLoad?: number): Candidate => ({
  vm: aVm({ id: `v${n++}`, node: 'x', load: source, ...(targetLoad === undefined ? {} : { targetLoad }) }),
  loadOnSource: source,
  loadOnTarget: target,
});
const state = (giverLoad: number, takerLoad: number, aimGap = 0): ExchangeState => ({
  giverLoad,
  takerLoad,
  aimGap,
});
const loads = (cs: readonly Candidate[] | undefined) => cs?.map((c) => c.loadOnSource);

describe('the improvement law at its edges', () => {
  it('allows a move that leaves the pair maximum where it was', () => {
    // 10 vs 0: a VM of 4 that weighs 10 on the taker leaves 6 vs 10.
    expect(improves(cand(4, 10), state(10, 0))).toBe(true);
    expect(improves(cand(4, 10.5), state(10, 0))).toBe(false);
  });

  it('refuses a move that only mirrors the gap, even one that nears a negative aim', () => {
    // 10 vs 0 → 0 vs 10: the imbalance is as large as before.
    expect(improves(cand(10), state(10, 0, -2))).toBe(false);
    expect(improves(cand(9), state(10, 0, -2))).toBe(true);
  });

  it('refuses a move that lands as far from the aim on the other side', () => {
    // Gap 10, aim 4: a VM of 6 leaves a gap of −2, again 6 from the aim; a VM of 5 leaves 0.
    expect(improves(cand(6), state(10, 0, 4))).toBe(false);
    expect(improves(cand(5), state(10, 0, 4))).toBe(true);
  });

  it('holds the same edges for swaps', () => {
    const swap = (g: Candidate, t: Candidate, s: ExchangeState) => swapImproves({ give: [g], take: [t] }, s);
    // 12 vs 2, taking a 2 back: giving a 6 (10 on the taker) leaves 8 vs 10; giving a 4 that weighs 12
    // on the taker leaves 10 vs 12, the maximum where it was; 12.5 on the taker would raise it.
    expect(swap(cand(6, 10), cand(2), state(12, 2))).toBe(true);
    expect(swap(cand(4, 12), cand(2), state(12, 2))).toBe(true);
    expect(swap(cand(4, 12.5), cand(2), state(12, 2))).toBe(false);
    // 10 vs 0 mirrored by a swap (give 10, take back a VM of no load).
    expect(swap(cand(10), cand(0), state(10, 0, -2))).toBe(false);
    expect(swap(cand(9), cand(0), state(10, 0, -2))).toBe(true);
    // Gap 10, aim 4: a net 6 lands at −2, as far from the aim; a net 5 lands on it.
    expect(swap(cand(8), cand(2), state(10, 0, 4))).toBe(false);
    expect(swap(cand(7), cand(2), state(10, 0, 4))).toBe(true);
  });
});

describe('each rule’s choice of a single VM', () => {
  it('half-difference picks the VM nearest half the gap left over the aim', () => {
    // 20 vs 10, aim 4: the search load is 3.
    const three = cand(3);
    expect(selectVm([cand(5), three, cand(4)], state(20, 10, 4), 'half-diff')).toBe(three);
  });

  it('target picks by programmed target load, the measured load standing in where none is set', () => {
    // 20 vs 10, aim 0: the search load is 5.
    const untargeted = cand(5);
    const wrong = cand(4.5, 4.5, 9);
    expect(selectVm([wrong, untargeted], state(20, 10), 'target')).toBe(untargeted);
    const right = cand(2, 2, 5);
    expect(selectVm([cand(5, 5, 1), right], state(20, 10), 'target')).toBe(right);
  });

  it('largest picks the largest VM that improves the pair', () => {
    const six = cand(6);
    expect(selectVm([cand(2), six, cand(11), cand(4)], state(20, 10), 'largest')).toBe(six);
  });

  it('best balance picks the VM that leaves the pair nearest the aim, first of equals', () => {
    const first = cand(3);
    expect(selectVm([cand(2), first, cand(3), cand(5)], state(20, 10, 4), 'best-balance')).toBe(first);
  });

  it('finds nothing when no VM improves the pair', () => {
    expect(selectVm([cand(10), cand(12)], state(20, 10), 'best-balance')).toBeUndefined();
    expect(selectVm([], state(20, 10), 'largest')).toBeUndefined();
  });
});

describe('the choice among swaps', () => {
  it('takes the swap nearest the aimed gap', () => {
    // 20 vs 10, aim 6: 5 for 3 leaves 18 vs 12 (gap 6); 5 for 2 leaves 17 vs 13 (gap 4).
    const s = state(20, 10, 6);
    expect(loads(selectSwap([cand(5)], [cand(2), cand(3)], s)?.take)).toEqual([3]);
    expect(loads(selectSwap([cand(5)], [cand(3), cand(2)], s)?.take)).toEqual([3]);
  });

  it('prefers giving two over taking two when both end as near the aim', () => {
    // 19 vs 11: giving 9 and 1 for a 9 (18 vs 12) and giving a 9 for 1 and 1 (12 vs 18) both leave
    // a gap of 6.
    const gives = [cand(9), cand(1), cand(9)];
    const takes = [cand(9), cand(1), cand(1)];
    const s = state(19, 11);
    expect(selectSwap(gives, takes, s, 2)).toBeUndefined();
    const w = selectSwap(gives, takes, s, 3);
    expect(w?.give).toEqual([gives[0], gives[1]]);
    expect(w?.take).toEqual([takes[0]]);
  });

  it('finds a couple anywhere in the list', () => {
    // 17 vs 14: giving 4 and 3 for a 5 leaves 15 vs 16; no single trade helps.
    const s = state(17, 14);
    const w = selectSwap([cand(100), cand(4), cand(100), cand(3)], [cand(5)], s, 3);
    expect(loads(w?.give)).toEqual([4, 3]);
    expect(loads(w?.take)).toEqual([5]);
    const back = selectSwap([cand(9)], [cand(100), cand(4), cand(100), cand(4)], s, 3);
    expect(loads(back?.take)).toEqual([4, 4]);
  });

  it(`tries two for one only while both sides have at most ${MULTI_SWAP_LIMIT} candidates`, () => {
    const s = state(17, 14);
    const pads = (k: number) => Array.from({ length: k }, () => cand(100));
    const give = (k: number) => selectSwap([...pads(k), cand(4), cand(3)], [cand(5)], s, 3);
    expect(loads(give(MULTI_SWAP_LIMIT - 2)?.give)).toEqual([4, 3]);
    expect(give(MULTI_SWAP_LIMIT - 1)).toBeUndefined();
    const take = (k: number) => selectSwap([cand(9)], [...pads(k), cand(4), cand(4)], s, 3);
    expect(loads(take(MULTI_SWAP_LIMIT - 2)?.take)).toEqual([4, 4]);
    expect(take(MULTI_SWAP_LIMIT - 1)).toBeUndefined();
  });
});
