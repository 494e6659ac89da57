// decideRound makes exactly the decisions recorded in golden-decisions.json: pairs, moves, reasons,
// skips, imbalance figures, expected loads and trigger, on fixed seeded clusters with every policy,
// constraint and limit. A refactor or a speed-up must leave them alone; an intended change of
// decisions regenerates the file (`npx tsx test/unit/domain/make-golden-decisions.ts`) and the
// diff shows which decisions changed.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decideCase, GOLDEN_PATH, type GoldenFile, goldenCases } from './make-golden-decisions.ts';

const golden = (JSON.parse(readFileSync(GOLDEN_PATH, 'utf8')) as GoldenFile).cases;
const cases = goldenCases();
const recorded = new Map(golden.map((c) => [c.name, c.decision]));

describe('decideRound against the golden decisions', () => {
  it('records a decision for every case the script builds, and no other', () => {
    expect(golden.map((c) => c.name)).toEqual(cases.map((c) => c.name));
  });

  it('records decisions that move VMs, skip nodes and give every kind of reason', () => {
    const decisions = golden.map((c) => c.decision);
    expect(decisions.flatMap((d) => d.moves).length).toBeGreaterThan(100);
    expect(decisions.flatMap((d) => d.skipped).length).toBeGreaterThan(100);
    // Every code a pair's reason may carry (Reason['code']).
    const codes = 'moved balanced below-threshold no-candidate no-gain constraint draining push-only limit';
    expect(new Set(decisions.flatMap((d) => d.pairs.map((p) => p.reason.code)))).toEqual(
      new Set(codes.split(' ')),
    );
  });

  it('makes the recorded decisions, reasons and figures on random clusters', () => {
    for (const c of cases.filter((x) => x.name.startsWith('random-'))) {
      expect(decideCase(c), c.name).toEqual(recorded.get(c.name));
    }
  });

  it('makes the recorded decisions on a skewed 300 × 3,000 cluster with the defaults', () => {
    const c = cases.find((x) => x.name === 'skewed-300x3000-defaults');
    expect(c).toBeDefined();
    if (c) expect(decideCase(c)).toEqual(recorded.get(c.name));
  });
});
