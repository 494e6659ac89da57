// Issue 15, the last extra moves on skewed clusters: a taker stops at its level with a VM the giver
// sheds anyway (`fitTaker`, `ExchangeState.rest` / `shedAnyway`), and a round carries out its
// exchanges most imbalance removed per migration first (`byValue`). Each example fails on the code
// before these rules.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { byValue } from '../../../shared/domain/exchange.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { RoundState } from '../../../shared/domain/round-state.ts';
import { type Candidate, type ExchangeState, selectVm } from '../../../shared/domain/selection.ts';
import type { Move, PairDecision, RoundDecision } from '../../../shared/domain/types.ts';
import { aNode, aRound, aVm, vmsOn } from './fixtures.ts';

const config = { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0, withRandom: false, maxMigrationsPerNode: 40 };

function round(nodes: [string, number[]][], seed = 1): RoundDecision {
  return decideRound(
    aRound(
      nodes.map(([id]) => aNode({ id })),
      nodes.flatMap(([id, sizes]) => vmsOn(id, sizes)),
    ),
    config,
    createRng(seed),
  );
}

const candidate = (load: number): Candidate => ({
  vm: aVm({ id: `v${load}`, node: 'g', load }),
  loadOnSource: load,
  loadOnTarget: load,
});
const sizes = [1.5, 1.4, 1.2, 1.0, 0.7].map(candidate);
const picked = (s: ExchangeState) => selectVm(sizes, s, 'best-balance')?.loadOnSource;

describe('the last VM of a taker-bound exchange', () => {
  // Giver at 20, taker at 5, 1.6 left to reach the aim, tolerance 1: every VM from 0.6 to 1.6 stops
  // the taker within it, short of the aim.
  const open: ExchangeState = { giverLoad: 20, takerLoad: 5, aimGap: 15 - 2 * 1.6, tolerance: 1 };

  it('is the largest within the tolerance when the giver sheds none of them anyway', () => {
    expect(picked(open)).toBe(1.5);
    expect(picked({ ...open, rest: 0.45 })).toBe(1.5);
  });

  it('is, among the VMs the giver sheds anyway, the one that stops the taker nearest its rest', () => {
    // 1.5 leaves 0.1, 1.4 leaves 0.2, 1.2 leaves 0.4 and 1.0 leaves 0.6 short: 1.2 is nearest 0.45.
    expect(picked({ ...open, rest: 0.45, shedAnyway: 1.0 })).toBe(1.2);
    // 0.7 (0.9 short) is not among them, though nearer a rest of 0.9.
    expect(picked({ ...open, rest: 0.9, shedAnyway: 1.0 })).toBe(1.0);
    // Only 1.5 is: it is taken, as before.
    expect(picked({ ...open, rest: 0.45, shedAnyway: 1.45 })).toBe(1.5);
  });

  it('never passes the aim or leaves more than the tolerance for the sake of the rest', () => {
    // 1.7 would pass the aim, 0.5 would leave 1.1 short: neither is taken though both go anyway.
    const wide = [1.7, 1.2, 0.5].map(candidate);
    expect(selectVm(wide, { ...open, rest: 1.0, shedAnyway: 0.5 }, 'best-balance')?.loadOnSource).toBe(1.2);
  });

  it('takes as many of them as land the taker nearest its rest, not the fewest the tolerance allows', () => {
    // 2.4 left to the aim, rest 0.3: 1.5 alone would leave the taker 0.9 short (within the tolerance,
    // so the rule before stopped there). Two of the four the giver sheds anyway, 1.2 and 1.0, leave it
    // 0.2 short; 1.5 and any other would pass the aim.
    const two: ExchangeState = { ...open, aimGap: 15 - 2 * 2.4, rest: 0.3, shedAnyway: 1.0, shedCount: 4 };
    expect(picked(two)).toBe(1.2);
    expect(picked({ ...two, shedAnyway: undefined, shedCount: undefined })).toBe(1.5);
    // 2.6 to fill (3 to the aim, rest 0.4): 1.4 and 1.2 land on it exactly, 1.5 with any other does not.
    expect(picked({ ...two, aimGap: 15 - 2 * 3, rest: 0.4 })).toBe(1.4);
  });

  it('counts as shed anyway only the giver’s `shedCount` largest, however many share the smallest size', () => {
    // A 1.2 and three 1.0s, of which the giver sheds two anyway (the 1.2 and one 1.0). 3 to the aim,
    // rest 0.1: three 1.0s would land 0.1 from the rest, but only two of these go anyway, so the two
    // that do are taken (1.2 first), 0.7 from it. Counted by size alone, a 1.0 would come first.
    const mixed = [1.2, 1, 1, 1].map((load, i) => ({
      ...candidate(load),
      vm: aVm({ id: `v${i}`, node: 'g', load }),
    }));
    const state: ExchangeState = { ...open, aimGap: 15 - 2 * 3, rest: 0.1, shedAnyway: 1, shedCount: 2 };
    expect(selectVm(mixed, state, 'best-balance')?.loadOnSource).toBe(1.2);
    expect(selectVm(mixed, { ...state, shedCount: undefined }, 'best-balance')?.loadOnSource).toBe(1);
  });

  it('in a round: the hot node stops its taker a third of a tolerance short of the mean', () => {
    // Mean 10, tolerance 1 (0.1 × mean); one node above the mean and three below, so h may stop 3
    // above it and the takers, if every giver stopped one tolerance above, rest 1/3 below. h (22)
    // sheds anyway its largest VMs within 22 − 10 − 3 = 9: 1.5, 1.5, 1.4, 1.3, 1.2, 1.1 and a 0.95.
    // a (5.7) needs 4.3. Before fitTaker h gave 1.5, 1.5 and 1.3 (a at the mean, 17.7 / 10); with the
    // last VM alone chosen for the rest, 1.5, 1.5 and 0.95 (0.35 short). Now all three are chosen among
    // the VMs h sheds anyway (fillToRest): 1.3, 1.5 and 1.2 leave a 0.3 short, nearer 1/3.
    const d = round([
      ['h', [1.5, 1.5, 1.4, 1.3, 1.2, 1.1, ...Array.from({ length: 14 }, () => 0.95), 0.7]],
      ['a', [1, 1, 1, 1, 1, 0.7]],
      ['b', [1, 1, 1, 1, 1, 1]],
      ['c', [1, 1, 1, 1, 1, 1, 0.3]],
    ]);
    const moved = d.pairs.find((p) => p.moves.length > 0) as PairDecision;
    expect(moved.moves.map((m) => m.loadOnSource)).toEqual([1.3, 1.5, 1.2]);
    expect(moved.predicted.requester).toBeCloseTo(18, 9);
    expect(moved.predicted.selected).toBeCloseTo(9.7, 9);
  });

  it('is the largest short of the mean when the giver keeps no surplus beyond its own tolerance', () => {
    // Mean 10, tolerance 1, h at 13: 3 above the mean is within its side's tolerance (3 × 1), so it
    // sheds nothing anyway. a (8.4) lacks 1.6 and takes the largest VM that keeps it short of the
    // mean, 1.5 (the rest, 1/3, would have picked 1.3).
    const d = round([
      ['h', [1.5, 1.5, 1.4, 1.3, 1.2, 1.1, 1, 1, 1, 1, 1]],
      ['a', [1, 1, 1, 1, 1, 1, 1, 1.4]],
      ['b', [1, 1, 1, 1, 1, 1, 1, 1, 1.2]],
      ['c', [1, 1, 1, 1, 1, 1, 1, 1, 1.4]],
    ]);
    const moved = d.pairs.filter((p) => p.moves.length > 0);
    expect(moved.map((p) => p.moves.map((m) => m.loadOnSource))).toEqual([[1.5]]);
  });
});

/** A decision with `n` moves that takes the pair from `before` to `after`. */
function exchange(id: string, before: [number, number], after: [number, number], n: number): PairDecision {
  const moves: Move[] = Array.from({ length: n }, (_, i) => ({
    vm: `${id}-${i}`,
    from: `${id}g`,
    to: `${id}t`,
    loadOnSource: 1,
    loadOnTarget: 1,
  }));
  return {
    requester: `${id}g`,
    selected: `${id}t`,
    loads: { requester: before[0], selected: before[1] },
    predicted: { requester: after[0], selected: after[1] },
    moves,
    reason: { code: moves.length > 0 ? 'moved' : 'balanced', detail: '' },
  };
}

describe('the order of a round’s exchanges (byValue)', () => {
  const state = { mean: 10 } as RoundState;

  it('puts the most imbalance removed per migration first, and leaves idle pairs in place', () => {
    // Around a mean of 10: wide, 30 / 0 → 16 / 4, removes (400 + 100 − 36 − 36) / 4 = 107 per move;
    // mid, 18 / 2 → 12 / 8, (64 + 64 − 4 − 4) / 2 = 60; narrow, 14 / 6 → 10 / 10, 32 in one move.
    const wide = exchange('w', [30, 0], [16, 4], 4);
    const idle = exchange('i', [11, 9], [11, 9], 0);
    const narrow = exchange('n', [14, 6], [10, 10], 1);
    const mid = exchange('m', [18, 2], [12, 8], 2);
    expect(byValue(state, [narrow, idle, mid, wide]).map((d) => d.requester)).toEqual([
      'wg',
      'ig',
      'mg',
      'ng',
    ]);
  });

  it('keeps the order decided between exchanges of equal value', () => {
    const a = exchange('a', [14, 6], [10, 10], 1);
    const b = exchange('b', [6, 14], [10, 10], 1);
    expect(byValue(state, [a, b]).map((d) => d.requester)).toEqual(['ag', 'bg']);
    expect(byValue(state, [b, a]).map((d) => d.requester)).toEqual(['bg', 'ag']);
  });

  it('lists a round’s exchanges, and its moves, by value per migration rather than by gap', () => {
    // Mean 16/3. n0 (10) and n1 (0), the widest pair, even out with a 3 and a 2: (21.8 + 28.4 −
    // 0.1 − 0.1) / 2 = 25 per migration. n3 (10) gives n2 (2) one 3, 10 → 7 and 2 → 5: 30. n5 (7)
    // gives n4 (3) a 1: 6. Decided widest gap first (25, 30, 6); carried out 30, 25, 6.
    const d = round([
      ['n0', [1, 3, 1, 2, 3]],
      ['n1', []],
      ['n2', [2]],
      ['n3', [1, 3, 2, 1, 3]],
      ['n4', [2, 1]],
      ['n5', [3, 1, 3]],
    ]);
    expect(d.pairs.map((p) => `${p.requester}-${p.selected} ${p.moves.map((m) => m.loadOnSource)}`)).toEqual([
      'n3-n2 3',
      'n0-n1 3,2',
      'n5-n4 1',
    ]);
    expect(d.moves).toEqual(d.pairs.flatMap((p) => p.moves));
  });
});

describe('one VM before a swap (oneBeforeSwap)', () => {
  it('moves the one VM that does what the swap would, where the tolerance stopped the exchange', () => {
    // Mean 10, tolerance 1. h (11.2) is within its side's tolerance and a (9.4) lacks 0.6, within
    // the takers' tolerance, and the one VM past the mean would leave the pair within it too: no
    // move. h is in the upper half of the excess and a below the mean, so the pair swapped, nearest
    // the midpoint: h gave its 1.2 for a's 0.4 (two migrations, 10.4 / 10.2). One 1.0 does as well
    // (10.2 / 10.4) in one migration.
    const d = round([
      ['h', [1.2, ...Array.from({ length: 9 }, () => 1), 0.6, 0.4]],
      ['a', [...Array.from({ length: 8 }, () => 1), 0.5, 0.5, 0.4]],
      ['b', [...Array.from({ length: 9 }, () => 1), 0.7]],
      ['c', [...Array.from({ length: 9 }, () => 1), 0.7]],
    ]);
    const moved = d.pairs.filter((p) => p.moves.length > 0);
    expect(moved.map((p) => p.moves.map((m) => `${m.from}→${m.to} ${m.loadOnSource}`))).toEqual([['h→a 1']]);
    expect(moved[0]?.predicted.requester).toBeCloseTo(10.2, 9);
    expect(moved[0]?.predicted.selected).toBeCloseTo(10.4, 9);
  });

  it('still swaps when no single VM improves the pair', () => {
    // Mean 10. h (11) holds five 2.2s and a (9.4) lacks 0.6: any 2.2 would raise the pair's maximum
    // (a at 11.6), so no one VM helps; a 2.2 for a's 1.4 evens the pair at 10.2.
    const d = round([
      ['h', [2.2, 2.2, 2.2, 2.2, 2.2]],
      ['a', [1.4, ...Array.from({ length: 8 }, () => 1)]],
      ['b', [...Array.from({ length: 9 }, () => 1), 0.8]],
      ['c', [...Array.from({ length: 9 }, () => 1), 0.8]],
    ]);
    const moved = d.pairs.filter((p) => p.moves.length > 0);
    expect(moved.map((p) => p.moves.map((m) => `${m.from}→${m.to} ${m.loadOnSource}`))).toEqual([
      ['h→a 2.2', 'a→h 1.4'],
    ]);
  });
});
