// selectVm's fill toward the taker's rest (`fillToRest`, `countToRest`, `pairMiss` and `shedAnyway` in
// shared/domain/selection.ts) on small exchange states in quarter units, one VM weight per side (a VM
// loads both nodes alike). Each state was found by a random search of states against a mutant of those
// functions that outlived the mutation run of 2026-12-01 (fifth pass, see docs/development.md): the
// mutant picks another VM, or none. They pin the rule as it stands: a change of the rule must change
// them on purpose.
import { describe, expect, it } from 'vitest';
import { type Candidate, type ExchangeState, selectVm } from '../../../shared/domain/selection.ts';
import { aVm } from './fixtures.ts';

const candidates = (loads: number[]): Candidate[] =>
  loads.map((load, i) => ({
    vm: aVm({ id: `v${i}`, node: 'g', load }),
    loadOnSource: load,
    loadOnTarget: load,
  }));

/** [VM loads, the exchange's state, the index of the VM picked (undefined: none)]. */
const PINNED: [number[], ExchangeState, number | undefined][] = [
  [
    [1, 3.75, 1],
    { giverLoad: 18.5, takerLoad: 11.75, aimGap: 1, tolerance: 1.5, rest: 0, shedAnyway: 1, shedCount: 3 },
    0,
  ],
  [[3], { giverLoad: 10.25, takerLoad: 4.25, aimGap: 0, tolerance: 3, rest: 1, shedAnyway: 3 }, 0],
  [
    [1, 3.25, 0.25],
    { giverLoad: 16.75, takerLoad: 8.5, aimGap: 0, tolerance: 1, rest: 0, shedAnyway: 0.25 },
    1,
  ],
  [
    [2, 1, 3.25],
    { giverLoad: 8.25, takerLoad: 0.5, aimGap: 0, tolerance: 0.5, rest: 0, shedAnyway: 0.25, shedCount: 3 },
    2,
  ],
  [
    [3, 3.25, 0.5, 3.25],
    { giverLoad: 15.25, takerLoad: 7, aimGap: 1.25, tolerance: 1.5, rest: 0, shedAnyway: 0.25, shedCount: 4 },
    0,
  ],
  [
    [2.25, 4, 1.5],
    { giverLoad: 16, takerLoad: 6.5, aimGap: 0, tolerance: 0.25, rest: 0, shedAnyway: 0.25 },
    1,
  ],
  [
    [0.25, 3.75],
    { giverLoad: 19.5, takerLoad: 7.75, aimGap: 0.25, tolerance: 3, rest: 0, shedAnyway: 0.25, shedCount: 2 },
    0,
  ],
  [
    [1.25, 2],
    {
      giverLoad: 19.75,
      takerLoad: 7.75,
      aimGap: 0.75,
      tolerance: 3,
      rest: 0,
      shedAnyway: 1.25,
      shedCount: 2,
    },
    0,
  ],
  [
    [1.75, 1.25, 3.75],
    { giverLoad: 15.5, takerLoad: 9.5, aimGap: 0, tolerance: 1, rest: 0, shedAnyway: 1.25, shedCount: 2 },
    2,
  ],
  [
    [1.75],
    { giverLoad: 8.25, takerLoad: 0.25, aimGap: 3.25, tolerance: 3, rest: 0, shedAnyway: 1.75, shedCount: 3 },
    0,
  ],
  [
    [0.5, 3.25, 0.25],
    { giverLoad: 8.75, takerLoad: 6, aimGap: 0, tolerance: 2, rest: 1.25, shedAnyway: 0.5, shedCount: 3 },
    undefined,
  ],
  [
    [2.25, 2.25, 3.25, 2.5, 2.75],
    { giverLoad: 17.75, takerLoad: 7.75, aimGap: 0, tolerance: 1.5, rest: 1.5, shedAnyway: 2.25 },
    0,
  ],
  [
    [3.25, 1.75, 2, 2.25, 3.5, 1],
    { giverLoad: 19, takerLoad: 13.5, aimGap: 0, tolerance: 0.5, rest: 0.5, shedAnyway: 0.25, shedCount: 6 },
    3,
  ],
  [
    [3, 3.5, 1.25, 1.25],
    { giverLoad: 11.25, takerLoad: 5.25, aimGap: 0, tolerance: 1.5, rest: 0, shedAnyway: 1.25 },
    0,
  ],
  [[1.5], { giverLoad: 7, takerLoad: 2.25, aimGap: 0, tolerance: 3, rest: 0.25, shedAnyway: 0.25 }, 0],
  [
    [0.25, 2.5],
    { giverLoad: 11, takerLoad: 3.25, aimGap: 0, tolerance: 2, rest: 2, shedAnyway: 0.25, shedCount: 2 },
    1,
  ],
];

describe('the fill toward the taker’s rest, pinned', () => {
  it.each(PINNED)('VMs %j in %o: picks VM %s', (loads, state, expected) => {
    const pick = selectVm(candidates(loads), { ...state }, 'best-balance');
    expect(pick?.vm.id).toBe(expected === undefined ? undefined : `v${expected}`);
  });
});
