// An exchange driven step by step (openExchange / stepExchange / closeExchange) when a limit is spent
// by another exchange of the same round, and the tolerance band it aims with (toleranceOf).
import { describe, expect, it } from 'vitest';
import { decideRound } from '../../../shared/domain/decide.ts';
import {
  closeExchange,
  type Exchange,
  openExchange,
  stepExchange,
  toleranceOf,
} from '../../../shared/domain/exchange.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { prepareRound, type RoundState } from '../../../shared/domain/round-state.ts';
import type { BalancingConfig, PairDecision, RoundInput } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, vmsOn } from './fixtures.ts';

const config = (over: Partial<BalancingConfig> = {}) =>
  aConfig({ trigger: 'difference', aim: 'pair', maxMigrationsPerNode: 2, ...over });

function open(state: RoundState, a: string, b: string): Exchange {
  const ex = openExchange(state, a, b);
  if ('reason' in ex) throw new Error(`${a}/${b} did not open: ${ex.reason.detail}`);
  return ex;
}

function run(state: RoundState, ex: Exchange): PairDecision {
  while (stepExchange(state, ex)) {}
  return closeExchange(state, ex);
}

describe('an exchange whose limit another exchange spent', () => {
  // a (10: 5 5) over b, and c (8: 4 4) over d: both pairs have a VM to move.
  const input = aRound(
    ['a', 'b', 'c', 'd'].map((id) => aNode({ id })),
    [...vmsOn('a', [5, 5]), ...vmsOn('c', [4, 4])],
  );

  it('says the cluster limit stopped it when the exchange opened beside it took the last migration', () => {
    const state = prepareRound(input, config({ maxMigrationsPerCluster: 1 }));
    const first = open(state, 'a', 'b');
    const second = open(state, 'c', 'd');
    expect(run(state, first).moves.map((m) => m.vm)).toEqual(['a-0']);
    const late = run(state, second);
    expect(late.moves).toEqual([]);
    expect(late.reason).toEqual({ code: 'limit', detail: 'cluster limit of 1 migrations reached' });
  });

  it('says the migration limit stopped it when its giver has no budget left', () => {
    // a's two in-flight migrations fill its limit; the exchange opens (the cluster has budget) but cannot move.
    const state = prepareRound({ ...input, inFlight: { a: 2 } }, config());
    const ex = open(state, 'a', 'b');
    expect(stepExchange(state, ex)).toBe(false);
    expect(closeExchange(state, ex).reason).toEqual({
      code: 'limit',
      detail: 'migration limit reached for a or b',
    });
  });

  it('says the migration limit stopped it when its taker has no budget left', () => {
    const state = prepareRound({ ...input, inFlight: { b: 2 } }, config());
    expect(run(state, open(state, 'a', 'b')).reason.code).toBe('limit');
  });
});

describe('a pair that opens with the cluster limit already spent', () => {
  it('names the cluster limit, not the constraints that would also have stopped it', () => {
    // c's two in-flight migrations spend the cluster limit of 2; a's VMs are pinned as well.
    const input: RoundInput = aRound(
      ['a', 'b', 'c'].map((id) => aNode({ id })),
      [...vmsOn('a', [5, 5], { pinned: true })],
      { inFlight: { c: 2 } },
    );
    const d = decideRound(input, config({ maxMigrationsPerCluster: 2 }), createRng(1));
    expect(d.pairs.map((p) => [p.requester, p.selected, p.reason])).toEqual([
      ['a', 'b', { code: 'limit', detail: 'cluster limit of 2 migrations reached' }],
    ]);
  });
});

describe('the tolerance an exchange aims with', () => {
  const loads = (xs: number[]) =>
    aRound(
      xs.map((_, i) => aNode({ id: `n${i}`, capacity: 100 })),
      xs.flatMap((x, i) => vmsOn(`n${i}`, [x])),
    );

  it('is at most twice the standard deviation of the loads (pinned)', () => {
    // 10, 10, 10 and 11: mean 10.25, standard deviation √0.1875; the band (factor 1.5) would be 10.25.
    const state = prepareRound(loads([10, 10, 10, 11]), config({ aim: 'mean', thresholdFactor: 1.5 }));
    expect(toleranceOf(state)).toBeCloseTo(2 * Math.sqrt(0.1875), 9);
  });

  it('is the band when the loads are spread wider (pinned)', () => {
    // 0 and 20: mean 10, standard deviation 10; the band is 2 × 0.1 × 10 = 2.
    const state = prepareRound(loads([0, 20]), config({ aim: 'mean', thresholdFactor: 1.1 }));
    expect(toleranceOf(state)).toBeCloseTo(2, 9);
  });

  it('is none under the headroom trigger or the pair aim', () => {
    const wide = loads([0, 20]);
    expect(
      toleranceOf(prepareRound(wide, config({ aim: 'mean', thresholdFactor: 1.1, trigger: 'headroom' }))),
    ).toBe(0);
    expect(toleranceOf(prepareRound(wide, config({ aim: 'pair', thresholdFactor: 1.1 })))).toBe(0);
  });
});
