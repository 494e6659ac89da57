// The balancer decides exactly what the golden fixture recorded on fixed seeded scenarios (drains,
// pins, anti-affinity, memory, drivers, swaps, every policy; input building; whole dry runs with
// learning at the bench's 10,000 × 100,000). Speed-ups must keep every digest; a deliberate policy
// change regenerates the fixture with `npm run golden`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { roundView } from '../../../functions/balancer/input.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { RoundInput } from '../../../shared/domain/types.ts';
import { type Golden, roundEntries, runEntries, variedRecords, viewEntries } from './scenarios.ts';

const golden = JSON.parse(readFileSync(new URL('./decisions.json', import.meta.url), 'utf8')) as Golden;

describe('golden decisions', () => {
  it('decideRound decides what the fixture recorded on every scenario', () => {
    expect(roundEntries()).toEqual(golden.rounds);
  });

  it('the scenarios exercise drains, swaps, constraints, limits and every reason', () => {
    const sum = (key: 'swaps' | 'drains') => golden.rounds.reduce((s, e) => s + e[key], 0);
    expect(sum('swaps')).toBeGreaterThan(0);
    expect(sum('drains')).toBeGreaterThan(0);
    const codes = new Set(golden.rounds.flatMap((e) => Object.keys(e.reasons)));
    for (const code of [
      'moved',
      'below-threshold',
      'no-gain',
      'constraint',
      'limit',
      'push-only',
      'balanced',
    ])
      expect(codes).toContain(code);
  });

  it('the VM loads the view hands the round decide what the round computes itself', () => {
    const view = roundView(variedRecords(400, 41), {
      now: 1_700_000_000_000,
      round: 2,
      shard: 0,
      shards: 1,
      reportStaleMs: 30_000,
      run: 'r',
    });
    expect(view.input.vmLoads?.load).toHaveLength(view.input.vms.length);
    const { vmLoads, ...bare } = view.input;
    const decide = (input: RoundInput) => decideRound(input, DEFAULT_BALANCING_CONFIG, createRng(5));
    const given = decide(view.input);
    expect(given.moves.length).toBeGreaterThan(0);
    expect(given).toEqual(decide(bare));
    // A mismatched length is ignored, not trusted.
    expect(decide({ ...bare, vmLoads: { node: [], load: [] } })).toEqual(given);
    void vmLoads;
  });

  it('input building gives the view the fixture recorded for each shard', () => {
    expect(viewEntries()).toEqual(golden.views);
  });

  it('whole dry runs record what the fixture recorded', async () => {
    const runs = await runEntries();
    expect(runs).toEqual(golden.runs);
    expect(runs.every((r) => r.moves > 0)).toBe(true);
  }, 120_000);
});
