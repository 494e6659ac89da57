// The balancer decides exactly what the golden fixture recorded on fixed seeded scenarios (drains,
// pins, anti-affinity, memory, drivers, swaps, every policy; input building; whole dry runs with
// learning at the bench's 10,000 × 100,000). Speed-ups must keep every digest; a deliberate policy
// change regenerates the fixture with `npm run golden`.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Golden, roundEntries, runEntries, viewEntries } from './scenarios.ts';

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

  it('input building gives the view the fixture recorded for each shard', () => {
    expect(viewEntries()).toEqual(golden.views);
  });

  it('whole dry runs record what the fixture recorded', async () => {
    const runs = await runEntries();
    expect(runs).toEqual(golden.runs);
    expect(runs.every((r) => r.moves > 0)).toBe(true);
  }, 120_000);
});
