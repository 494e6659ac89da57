// Edges of the taker's level (`fitTaker` in shared/domain/exchange.ts) that random clusters almost
// never reach, pinned on small rounds in exact binary figures: thresholdFactor 1.25 and a mean of 8
// make the tolerance exactly 2 × 0.25 × 8 = 4 load units, so a VM can fill what is left exactly.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { movedExchanges } from './fixtures.ts';

const config = {
  ...DEFAULT_BALANCING_CONFIG,
  cooldownMs: 0,
  withRandom: false,
  maxMigrationsPerNode: 40,
  thresholdFactor: 1.25,
};

/** Each exchange that moved, as `giver-taker loads`, in the order carried out. */
const exchanges = (nodes: [string, number[]][]) => movedExchanges(nodes, config);

const ones = (n: number) => Array.from({ length: n }, () => 1);

describe('the taker’s level at its exact edges', () => {
  it('counts a VM that fills the giver’s excess beyond its tolerance exactly as shed anyway', () => {
    // Mean 8, tolerance 4. n0 (20) is 12 above the mean, n1 (0) takes 8: a taker-bound exchange. n0's
    // excess beyond its own tolerance is 8 = 3 + 3 + 2, so the 2 is shed anyway too; the taker then
    // rests 4 below the mean (the sides are two and two), and after a 3 the 2 lands it there (5 left to
    // the aim, 3 short of it) where a second 3 would stop it 2 short.
    expect(
      exchanges([
        ['n0', [3, 3, 2, ...ones(12)]],
        ['n1', []],
        ['n2', [5, 5]],
        ['n3', [2]],
      ]),
    ).toEqual(['n0-n1 3,2']);
  });

  it('leaves a giver-bound exchange without a level: its largest VM goes first', () => {
    // Mean 8, tolerance 4. n0 (16) is 8 above the mean and n1 (0) 8 below: n1 may take all of n0's
    // excess, so the exchange aims at the mean with the largest VMs that do not pass it (2, then 1s,
    // until the rest is within the tolerance). A level for the taker would fill it with the VMs of
    // about an equal share of 8 − 4 first: a 1, then the 2.
    expect(
      exchanges([
        ['n0', [2, ...ones(14)]],
        ['n1', []],
        ['n2', [4, 4]],
        ['n3', [4, 4]],
      ]),
    ).toEqual(['n0-n1 2,1,1']);
  });
});
