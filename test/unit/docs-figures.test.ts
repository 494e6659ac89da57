// The figures in docs/*.md are the snapshot of the last bench run (bench/baseline.json), through
// the marked regions bench/figures.ts generates: a hand-edited or stale figure fails here.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Baseline,
  docsPages,
  figureAt,
  formatFigure,
  readBaseline,
  regionsOf,
  renderRegion,
  rewrite,
  takeResults,
} from '../../bench/figures.ts';

const aBaseline = (figures: Record<string, unknown>, at = '2026-11-30T22:00:00.000Z'): Baseline => ({
  suites: { demo: { at, node: 'v20.20.2', figures } },
});

describe('the figures in docs/*.md', () => {
  const baseline = readBaseline();
  const pages = docsPages().map((page) => ({ page: basename(page), text: readFileSync(page, 'utf8') }));

  it.each(pages)('are the snapshot’s in $page', ({ page, text }) => {
    for (const region of regionsOf(text, baseline))
      expect(region.content, `${page}: <!-- figures:${region.spec} --> (npm run docs:figures)`).toBe(
        region.expected,
      );
  });

  it('quote every suite whose figures the docs discuss', () => {
    const quoted = new Set(
      pages.flatMap(({ text }) =>
        regionsOf(text, baseline).map((r) => r.spec.replace(/^table /, '').split(/[.\s|]/)[0]),
      ),
    );
    for (const suite of ['cli', 'kernel', 'migration', 'balancer', 'sim']) expect(quoted).toContain(suite);
  });
});

describe('a marked region', () => {
  const baseline = aBaseline({
    overhead: { percent: 2.25, trials: [2, 1.75] },
    rows: [
      { policy: 'default', cv: 0.0312, migrations: 3418, met: true },
      { policy: 'greedy', cv: 0.019, migrations: null, met: false },
    ],
  });

  it('shows a figure as measured, with its unit from the template', () => {
    expect(renderRegion(baseline, 'demo.overhead.percent {} %')).toBe('2.25 %');
    expect(renderRegion(baseline, 'demo.overhead.percent {.1}')).toBe('2.3');
    expect(renderRegion(baseline, 'demo.rows[0].migrations')).toBe('3,418');
    expect(renderRegion(baseline, 'demo.rows.1.met {met}')).toBe('not met');
    expect(renderRegion(baseline, 'demo.overhead.trials')).toBe('2, 1.75');
    expect(renderRegion(baseline, 'demo.$at {date}')).toBe('2026-11-30');
  });

  it('renders a list of rows as a Markdown table', () => {
    expect(renderRegion(baseline, 'table demo.rows | policy: policy | CV: cv {.3} | moves: migrations')).toBe(
      '\n| policy | CV | moves |\n| --- | --- | --- |\n| default | 0.031 | 3,418 |\n| greedy | 0.019 | — |\n',
    );
  });

  it('names a figure the snapshot does not have', () => {
    expect(() => figureAt(baseline, 'demo.overhead.missing')).toThrow(/demo\.overhead\.missing/);
    expect(() => figureAt(baseline, 'other.x')).toThrow(/no suite "other"/);
    expect(() => formatFigure('fast', '{.2}')).toThrow(/needs a number/);
  });

  it('may not start a line inside a paragraph, and a table must', () => {
    expect(() =>
      regionsOf('Overhead\n<!-- figures:demo.overhead.percent -->2.25<!-- /figures -->', baseline),
    ).toThrow(/cannot start a line/);
    expect(() =>
      regionsOf('Rows: <!-- figures:table demo.rows | policy: policy -->\n<!-- /figures -->', baseline),
    ).toThrow(/line of its own/);
  });

  it('is rewritten to the snapshot, and only the region changes', () => {
    const doc = 'Overhead <!-- figures:demo.overhead.percent {} % -->9 %<!-- /figures --> of a tick.\n';
    const once = rewrite(doc, baseline);
    expect(once).toBe(
      'Overhead <!-- figures:demo.overhead.percent {} % -->2.25 %<!-- /figures --> of a tick.\n',
    );
    expect(rewrite(once, baseline)).toBe(once);
    expect(regionsOf(doc, baseline)).toEqual([
      { spec: 'demo.overhead.percent {} %', content: '9 %', expected: '2.25 %' },
    ]);
  });
});

describe('taking a bench run into the snapshot', () => {
  const before = aBaseline({ value: 1 }, '2026-11-01T00:00:00.000Z');
  const run = (over: Record<string, unknown>) => ({
    node: 'v22.0.0',
    suites: { demo: { at: '2026-11-30T00:00:00.000Z', quick: false, figures: { value: 2 }, ...over } },
  });

  it('replaces a suite by its latest full run', () => {
    const lines: string[] = [];
    const after = takeResults(before, run({}), (l) => lines.push(l));
    expect(after.suites.demo).toEqual({
      at: '2026-11-30T00:00:00.000Z',
      node: 'v22.0.0',
      figures: { value: 2 },
    });
    expect(lines).toEqual(['demo: snapshot from the run of 2026-11-30T00:00:00.000Z']);
  });

  it('keeps the snapshot when the run was --quick, failed or skipped', () => {
    for (const over of [
      { quick: true },
      { error: 'boom', figures: undefined },
      { figures: { skipped: 'qemu-system-x86_64 not found' } },
    ]) {
      const lines: string[] = [];
      expect(takeResults(before, run(over), (l) => lines.push(l))).toEqual(before);
      expect(lines[0]).toMatch(/snapshot kept/);
    }
  });
});
