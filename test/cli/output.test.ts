// The CLI's output conventions: git-style id abbreviation and prefix lookup, CV as a percentage,
// compact times, and a dry run that gives each pair's reason within 100 columns.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RunRecord } from '../../bin/client.ts';
import { printRun } from '../../bin/commands/balance.ts';
import { abbreviate, clock, pct, resolvePrefix, WIDTH, wrap } from '../../bin/commands/output.ts';
import { aPair } from '../support/records.ts';

const RUNS = [
  'run-0mx3npz1c-s0-ca1e3fa5',
  'run-0mx3npxh3-s0-49fedec6',
  'run-0mx3npvx3-s0-493c55b3',
  'run-0mx3npvx3-s1-77aa0c11',
];

describe('abbreviate', () => {
  it('keeps at least 11 characters, like git keeps 7 hex digits', () => {
    expect(abbreviate(['run-0mx3npz1c-s0-ca1e3fa5'])('run-0mx3npz1c-s0-ca1e3fa5')).toBe('run-0mx3npz');
  });

  it('lengthens an abbreviation until no other id listed shares it', () => {
    const short = abbreviate(RUNS);
    expect(RUNS.map(short)).toEqual(['run-0mx3npz', 'run-0mx3npx', 'run-0mx3npvx3-s0', 'run-0mx3npvx3-s1']);
    // Every abbreviation names exactly its own id.
    for (const id of RUNS) expect(RUNS.filter((other) => other.startsWith(short(id)))).toEqual([id]);
  });

  it('leaves short ids whole', () => {
    expect(abbreviate(['api', 'mig-1'])('api')).toBe('api');
  });
});

describe('resolvePrefix', () => {
  it('takes an abbreviation back, with or without the kind prefix', () => {
    expect(resolvePrefix('run-0mx3npz', RUNS, 'run')).toBe(RUNS[0]);
    expect(resolvePrefix('0mx3npx', RUNS, 'run')).toBe(RUNS[1]);
    expect(resolvePrefix(RUNS[2] as string, RUNS, 'run')).toBe(RUNS[2]);
  });

  it('names the candidates of an ambiguous prefix and says when nothing matches', () => {
    expect(() => resolvePrefix('0mx3npvx3', RUNS, 'run')).toThrow(
      '"0mx3npvx3" is ambiguous: run-0mx3npvx3-s0, run-0mx3npvx3-s1',
    );
    expect(() => resolvePrefix('zzz', RUNS, 'run')).toThrow(
      'no run id starts with "zzz" (among the 4 most recent)',
    );
  });
});

describe('units and times', () => {
  it('shows a CV fraction as a percentage', () => {
    expect(pct(0.0461)).toBe('4.6%');
    expect(pct(1.132)).toBe('113.2%');
    expect(pct(undefined)).toBe('-');
  });

  it('shows a time of today as a clock time and an older one with its date (UTC)', () => {
    const now = Date.parse('2026-11-30T19:30:00Z');
    expect(clock(Date.parse('2026-11-30T19:24:28.704Z'), now)).toBe('19:24:28Z');
    expect(clock(Date.parse('2026-11-29T08:05:00Z'), now)).toBe('11-29T08:05Z');
    expect(clock(undefined, now)).toBe('-');
  });

  it('wraps at word boundaries with a hanging indent', () => {
    expect(wrap('aa bb cc dd', 5, 2)).toBe('aa bb\n  cc dd');
  });
});

describe('printRun', () => {
  const lines: string[] = [];
  afterEach(() => {
    vi.restoreAllMocks();
    lines.length = 0;
  });

  it("prints a dry run's CV as percentages and every pair's reason, within 100 columns", () => {
    vi.spyOn(console, 'log').mockImplementation((line = '') => {
      lines.push(...String(line).split('\n'));
    });
    const detail =
      'none of 3 movable VM(s) of node-1 brings 1.31 vs 0.62 closer without raising the pair maximum, twice over';
    printRun({
      id: 'run-0mx3npz1c-s0-ca1e3fa5',
      dryRun: true,
      exchanges: 0,
      ordersWritten: 0,
      ordersLost: 0,
      orders: [],
      pairs: [
        aPair('node-1', 'node-3', [1.31, 0.62], { reason: { code: 'no-gain', detail } }),
        aPair('node-2', 'node-4', [0.5, 0.45], {
          reason: { code: 'below-threshold', detail: '0.5 vs 0.45: within factor 1.1' },
        }),
      ],
      before: { cv: 0.452, maxOverMean: 1.6, maxLoad: 1.31, mean: 0.72 },
      after: { cv: 0.452, maxOverMean: 1.6, maxLoad: 1.31, mean: 0.72 },
    } as unknown as RunRecord);
    expect(lines[0]).toBe('run-0mx3npz (dry run): 2 pairs, 0 exchanges, 0 orders planned');
    expect(lines[1]).toBe('imbalance CV 45.2% → 45.2% expected, max/mean 1.6 → 1.6');
    expect(lines[3]).toMatch(/^PAIR\s+LOADS\s+REASON$/);
    expect(lines[4]).toMatch(/^node-1 ⇄ node-3\s+1\.31 ⇄ 0\.62\s+no-gain: none of 3 movable/);
    expect(lines.join(' ').replace(/\s+/g, ' ')).toContain(`no-gain: ${detail}`);
    expect(lines.some((l) => /^node-2 ⇄ node-4\s+0\.5 ⇄ 0\.45\s+below-threshold: /.test(l))).toBe(true);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(WIDTH);
  });
});
