// Best-balance with a tolerance (shared/domain/selection.ts, `largestWithin`) at its edges: it never
// picks a VM that does not improve the pair, a VM leaving exactly the tolerance short of the aim is
// within it, and of equal VMs the first listed goes. Pinned in figures exact in binary.
import { describe, expect, it } from 'vitest';
import { type Candidate, type ExchangeState, improves, selectVm } from '../../../shared/domain/selection.ts';
import { aVm } from './fixtures.ts';

const candidate = (id: string, load: number): Candidate => ({
  vm: aVm({ id, node: 'g', load }),
  loadOnSource: load,
  loadOnTarget: load,
});
const pick = (cs: Candidate[], s: ExchangeState) => selectVm(cs, s, 'best-balance')?.vm.id;

describe('best-balance with a tolerance', () => {
  it('picks nothing when no VM improves the pair, however near the aim one would land', () => {
    // 10 / 8, 1 to move, tolerance 0.5: a VM of 5 leaves 5 / 13 (a wider gap, a higher maximum).
    const s: ExchangeState = { giverLoad: 10, takerLoad: 8, aimGap: 0, tolerance: 0.5 };
    const big = candidate('big', 5);
    expect(improves(big, s)).toBe(false);
    expect(pick([big], s)).toBeUndefined();
    expect(pick([big, candidate('small', 0.25)], s)).toBe('small');
    // Nor when the giver sheds it anyway and it would stop the taker at its rest.
    expect(pick([big], { ...s, shedAnyway: 1, rest: 0 })).toBeUndefined();
  });

  it('takes a VM that leaves exactly the tolerance short of the aim as within it', () => {
    // 10 / 2, 4 to move, tolerance 1: 3 leaves 1 short (within), 4.5 passes the aim by 0.5.
    const s: ExchangeState = { giverLoad: 10, takerLoad: 2, aimGap: 0, tolerance: 1 };
    expect(pick([candidate('three', 3), candidate('passes', 4.5)], s)).toBe('three');
    expect(pick([candidate('passes', 4.5), candidate('three', 3)], s)).toBe('three');
  });

  it('moves the first listed of equal VMs', () => {
    const s: ExchangeState = { giverLoad: 10, takerLoad: 2, aimGap: 0, tolerance: 1 };
    expect(pick([candidate('a', 3.5), candidate('b', 3.5), candidate('c', 3)], s)).toBe('a');
    // Among VMs the giver sheds anyway, stopping the taker equally near its rest.
    expect(pick([candidate('a', 3.5), candidate('b', 3.5)], { ...s, shedAnyway: 3, rest: 0.5 })).toBe('a');
    // Nearest the aim when none is within: 6 and 6 both pass it by 2.
    expect(pick([candidate('x', 6), candidate('y', 6)], s)).toBe('x');
  });
});
