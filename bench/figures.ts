// Figures quoted in docs/*.md come from the benchmarks, never by hand. Each one sits in a marked
// region that names where it comes from:
//
//   <!-- figures:kernel.overhead.overheadPercent {} % -->2 %<!-- /figures -->
//   <!-- figures:table sim.skewed.policies | policy: policy | CV @10: cvAt10 {.3} -->
//   ...generated table...
//   <!-- /figures -->
//
// `npm run docs:figures` copies the suites of bench/results.json (written by `npm run bench`, not
// committed) into the committed snapshot bench/baseline.json and rewrites every region from it.
// test/unit/docs-figures.test.ts fails when a region differs from what the snapshot gives, so a
// figure in the docs cannot drift from the measurement it quotes.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './index.ts';

/** One suite as the snapshot keeps it: when and how it ran, and its figures. */
interface SuiteSnapshot {
  at: string;
  node: string;
  figures: Record<string, unknown>;
}

export interface Baseline {
  suites: Record<string, SuiteSnapshot>;
}

const RESULTS = join(REPO_ROOT, 'bench', 'results.json');
const BASELINE = join(REPO_ROOT, 'bench', 'baseline.json');
const DOCS = join(REPO_ROOT, 'docs');

// A region: the opening comment's spec, the generated content, the closing comment.
const REGION = /<!-- figures:(.*?) -->([\s\S]*?)<!-- \/figures -->/g;

// A path: the suite, then keys as `.key`, `[index]` or `["a key with spaces or dots"]`.
const PATH = /^([^\s.[\]]+)((?:\.[^\s.[\]]+|\[\d+\]|\["[^"]*"\])*)(?:\s+|$)/;
const KEY = /\.([^\s.[\]]+)|\[(\d+)\]|\["([^"]*)"\]/g;

/** A region's spec split into its path's suite and keys, and the template after it. */
function parseSpec(spec: string): { suite: string; keys: string[]; template: string } {
  const match = PATH.exec(spec);
  if (!match) throw new Error(`figures: "${spec}" does not start with a path`);
  const keys = [...(match[2] ?? '').matchAll(KEY)].map((k) => (k[1] ?? k[2] ?? k[3]) as string);
  return { suite: match[1] as string, keys, template: spec.slice(match[0].length) };
}

/**
 * The value at `path` (suite, then the figure's keys; `[i]` or `.i` indexes an array).
 * `suite.$at` and `suite.$node` are when and on which Node.js the suite ran.
 */
export function figureAt(baseline: Baseline, path: string): unknown {
  const { suite, keys } = parseSpec(path);
  const snapshot = baseline.suites[suite];
  if (!snapshot) throw new Error(`figures: no suite "${suite}" in the snapshot (${path})`);
  if (keys.length === 1 && keys[0] === '$at') return snapshot.at;
  if (keys.length === 1 && keys[0] === '$node') return snapshot.node;
  let value: unknown = snapshot.figures;
  for (const key of keys) {
    if (value === null || typeof value !== 'object' || !(key in value))
      throw new Error(`figures: no figure "${path}" in the snapshot`);
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

const number = (n: number, decimals?: number) =>
  n.toLocaleString('en-US', {
    useGrouping: true,
    ...(decimals === undefined
      ? { maximumFractionDigits: 20 }
      : { minimumFractionDigits: decimals, maximumFractionDigits: decimals }),
  });

/**
 * A value through a template: `{}` is the value as measured (thousands grouped, booleans yes/no,
 * null —), `{.N}` a number to N decimals, `{met}` a boolean as met / not met, `{date}` an ISO time
 * as its day. Text around the placeholder is kept.
 */
export function formatFigure(value: unknown, template = '{}'): string {
  return template.replace(/\{(\.\d+|met|date|)\}/g, (_, how: string) => {
    if (value === null || value === undefined) return '—';
    if (how === 'met') return value ? 'met' : 'not met';
    if (how === 'date') return String(value).slice(0, 10);
    if (how.startsWith('.')) {
      if (typeof value !== 'number') throw new Error(`figures: {${how}} needs a number, got ${value}`);
      return number(value, Number(how.slice(1)));
    }
    if (typeof value === 'number') return number(value);
    if (typeof value === 'boolean') return value ? 'yes' : 'no';
    if (Array.isArray(value)) return value.map((v) => formatFigure(v)).join(', ');
    return String(value);
  });
}

/** `table PATH | Label: field template | …`: a Markdown table, one row per element of the array at PATH. */
function renderTable(baseline: Baseline, spec: string): string {
  const [path = '', ...columns] = spec.split('|').map((s) => s.trim());
  const rows = figureAt(baseline, path);
  if (!Array.isArray(rows)) throw new Error(`figures: ${path} is not a list of rows`);
  const parsed = columns.map((column) => {
    const match = /^(.+?):\s*(\S+)\s*(.*)$/.exec(column);
    if (!match) throw new Error(`figures: a column is "Label: field [template]", got "${column}"`);
    return { label: match[1] as string, field: match[2] as string, template: match[3] || '{}' };
  });
  const cell = (row: unknown, field: string) =>
    field.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], row);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    '',
    line(parsed.map((c) => c.label)),
    line(parsed.map(() => '---')),
    ...rows.map((row) => line(parsed.map((c) => formatFigure(cell(row, c.field), c.template)))),
    '',
  ].join('\n');
}

/** What a region's spec renders to from the snapshot. */
export function renderRegion(baseline: Baseline, spec: string): string {
  if (spec.startsWith('table ')) return renderTable(baseline, spec.slice('table '.length));
  return formatFigure(figureAt(baseline, spec), parseSpec(spec).template || '{}');
}

export interface Region {
  spec: string;
  content: string;
  expected: string;
}

/**
 * Every marked region of a Markdown text, with what the snapshot says it should hold. A figure
 * inside a paragraph must not start a line: there the comment would begin an HTML block and the
 * rest of the line would not render as Markdown. A table region stands on lines of its own.
 */
export function regionsOf(text: string, baseline: Baseline): Region[] {
  return [...text.matchAll(REGION)].map((match) => {
    const [, spec = '', content = ''] = match;
    const atLineStart = match.index === 0 || text[(match.index ?? 0) - 1] === '\n';
    if (spec.startsWith('table ') !== atLineStart)
      throw new Error(
        spec.startsWith('table ')
          ? `figures: a table region starts a line of its own (${spec})`
          : `figures: a figure inside a paragraph cannot start a line (${spec})`,
      );
    return { spec, content, expected: renderRegion(baseline, spec) };
  });
}

/** The text with every region regenerated from the snapshot. */
export function rewrite(text: string, baseline: Baseline): string {
  return text.replace(
    REGION,
    (_, spec: string) => `<!-- figures:${spec} -->${renderRegion(baseline, spec)}<!-- /figures -->`,
  );
}

export function readBaseline(file = BASELINE): Baseline {
  return JSON.parse(readFileSync(file, 'utf8')) as Baseline;
}

/** The docs pages, by file name. */
export function docsPages(dir = DOCS): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(dir, f));
}

interface Results {
  node: string;
  suites: Record<string, { at: string; quick: boolean; figures?: Record<string, unknown>; error?: string }>;
}

/** The snapshot with the full (not --quick), successful, not skipped suites of a run in place of older ones. */
export function takeResults(baseline: Baseline, results: Results, log: (line: string) => void): Baseline {
  const suites = { ...baseline.suites };
  for (const [name, outcome] of Object.entries(results.suites)) {
    if (outcome.error || !outcome.figures) log(`${name}: failed in the last run, snapshot kept`);
    else if (outcome.quick) log(`${name}: a --quick run, snapshot kept (run it without --quick)`);
    else if (typeof outcome.figures.skipped === 'string')
      log(`${name}: skipped (${outcome.figures.skipped}), snapshot kept`);
    else if (suites[name]?.at === outcome.at) continue;
    else {
      suites[name] = { at: outcome.at, node: results.node, figures: outcome.figures };
      log(`${name}: snapshot from the run of ${outcome.at}`);
    }
  }
  return { suites: Object.fromEntries(Object.entries(suites).sort(([a], [b]) => a.localeCompare(b))) };
}

async function main(args: string[]): Promise<number> {
  const check = args.includes('--check');
  let baseline = existsSync(BASELINE) ? readBaseline() : { suites: {} };
  if (!check) {
    if (existsSync(RESULTS)) {
      const taken = takeResults(baseline, JSON.parse(readFileSync(RESULTS, 'utf8')) as Results, console.log);
      if (JSON.stringify(taken) !== JSON.stringify(baseline))
        writeFileSync(BASELINE, `${JSON.stringify(taken, null, 2)}\n`);
      baseline = taken;
    } else console.log('no bench/results.json (npm run bench writes it): docs rewritten from the snapshot');
  }
  let stale = 0;
  for (const page of docsPages()) {
    const text = readFileSync(page, 'utf8');
    regionsOf(text, baseline); // throws on a region the snapshot cannot fill or a misplaced one
    const next = rewrite(text, baseline);
    if (next === text) continue;
    if (check) {
      for (const r of regionsOf(text, baseline).filter((r) => r.content !== r.expected))
        console.log(`${page}: ${r.spec}\n  docs:     ${r.content.trim()}\n  snapshot: ${r.expected.trim()}`);
      stale += 1;
    } else {
      writeFileSync(page, next);
      console.log(`${page}: figures rewritten`);
    }
  }
  return check && stale > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
