// Three edges of shared/domain/selection.ts that outlived the fifth mutation pass (see
// docs/development.md), pinned on hand-made states: the tolerance rule is best-balance's alone, a VM
// landing the pair exactly on its aim is within the tolerance, and a swap must move more than the margin.
import { describe, expect, it } from 'vitest';
import { type Candidate, selectSwap, selectVm } from '../../../shared/domain/selection.ts';
import { aVm } from './fixtures.ts';

const candidates = (loads: number[]): Candidate[] =>
  loads.map((load, i) => ({
    vm: aVm({ id: `v${i}`, node: 'g', load }),
    loadOnSource: load,
    loadOnTarget: load,
  }));

describe('selection at its edges', () => {
  it('applies the tolerance only under best-balance: `largest` still takes the largest improving VM', () => {
    // 10 vs 0, 5 to move, tolerance 1: best-balance would take the 4.5 (within the tolerance), `largest` the 8.
    const state = { giverLoad: 10, takerLoad: 0, aimGap: 0, tolerance: 1 };
    expect(selectVm(candidates([4.5, 8]), state, 'largest')?.vm.id).toBe('v1');
    expect(selectVm(candidates([4.5, 8]), state, 'best-balance')?.vm.id).toBe('v0');
  });

  it('counts a VM that lands the pair exactly on its aim as within the tolerance, and the larger wins', () => {
    // 5 to move: the 5 lands on the aim (0 short), the 4.5 half a unit short; both within 1.
    const state = { giverLoad: 10, takerLoad: 0, aimGap: 0, tolerance: 1 };
    expect(selectVm(candidates([4.5, 5]), state, 'best-balance')?.vm.id).toBe('v1');
  });

  it('refuses a swap whose net transfer is within the margin', () => {
    // 10 vs 9: giving a 4 for a 3.96 narrows the gap by 0.08 but moves only 0.04, under the margin 0.05.
    const state = { giverLoad: 10, takerLoad: 9, aimGap: 0 };
    expect(selectSwap(candidates([4]), candidates([3.96]), state, 2, 0.05)).toBeUndefined();
    expect(selectSwap(candidates([4]), candidates([3.9]), state, 2, 0.05)?.give[0]?.loadOnSource).toBe(4);
  });
});
