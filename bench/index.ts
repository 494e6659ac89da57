// The bench harness: discovers bench/suites/*.ts, runs all or the named ones, prints each suite's
// figures in one table and writes bench/results.json (merged with the suites not run this time).
// After each suite it checks that the suite closed what it opened (bench/handles.ts): a server or
// child process left running would keep `npm run bench` alive after its results.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { leftOpen, openResources } from './handles.ts';

export interface BenchContext {
  quick: boolean;
  log: (line: string) => void;
}

interface Suite {
  name: string;
  run(ctx: BenchContext): Promise<Record<string, unknown>>;
}

interface SuiteOutcome {
  ms: number;
  quick: boolean;
  at: string;
  figures?: Record<string, unknown>;
  error?: string;
  /** Resources the suite opened and did not close (types, as bench/handles.ts names them). */
  leftOpen?: string[];
}

/** The repository root (bench/.. of this file). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SUITES_DIR = join(REPO_ROOT, 'bench', 'suites');
const RESULTS = join(REPO_ROOT, 'bench', 'results.json');

/** Suite names found in bench/suites, in name order. */
export function suiteNames(): string[] {
  if (!existsSync(SUITES_DIR)) return [];
  return readdirSync(SUITES_DIR)
    .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** Run the named suites (all when none are named); false when one failed or left something open. */
export async function runBench(
  names: string[],
  options: { quick: boolean; out?: (line: string) => void },
): Promise<boolean> {
  const out = options.out ?? ((line: string) => console.log(line));
  const available = suiteNames();
  const unknown = names.filter((n) => !available.includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `unknown bench suite(s): ${unknown.join(', ')} (available: ${available.join(', ') || 'none'})`,
    );
  }
  const selected = names.length > 0 ? names : available;
  const outcomes: Record<string, SuiteOutcome> = {};
  for (const [i, file] of selected.entries()) {
    const mod = (await import(pathToFileURL(join(SUITES_DIR, `${file}.ts`)).href)) as Partial<Suite>;
    const name = mod.name ?? file;
    out(`\n== ${name}${options.quick ? ' (quick)' : ''} [${i + 1}/${selected.length}] ==`);
    const before = openResources();
    const outcome = await runSuite(mod, file, options.quick, out);
    const open = await leftOpen(before);
    if (open.length > 0) {
      out(
        `  LEFT OPEN by ${name}: ${open.join(', ')} (it did not close a server, socket, child process or timer)`,
      );
      outcome.leftOpen = open;
    }
    outcomes[name] = outcome;
  }
  out(`\n${formatSummary(outcomes)}`);
  writeResults(outcomes);
  out(`\nresults written to ${RESULTS}`);
  return verdict(outcomes, out);
}

/** A suite that has printed nothing for this long gets a line from the harness, so long work shows progress. */
const QUIET_MS = 30_000;
/** A suite still running after this long has hung (the longest full suite takes about 3 min at load 15). */
const SUITE_LIMIT_MS = 30 * 60_000;

/**
 * `work`, or a rejection once `ms` have passed. The work itself cannot be stopped: what it holds
 * open is reported after the suite and, if it keeps the process alive, by the exit watchdog. The
 * timer is unref'd, so it never keeps the process alive itself.
 */
export function withinLimit<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms / 1000} s`)), ms);
    timer.unref();
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

/** One suite, timed; a suite that throws gives an outcome with its error, and the run goes on. */
async function runSuite(
  mod: Partial<Suite>,
  file: string,
  quick: boolean,
  out: (line: string) => void,
): Promise<SuiteOutcome> {
  const started = performance.now();
  const at = new Date().toISOString();
  const took = () => Math.round(performance.now() - started);
  let lastLine = started;
  const log = (line: string) => {
    lastLine = performance.now();
    out(`  ${line}`);
  };
  const beat = setInterval(() => {
    if (performance.now() - lastLine >= QUIET_MS)
      log(`… still running, ${Math.round(took() / 1000)} s so far`);
  }, QUIET_MS / 6);
  beat.unref();
  try {
    if (typeof mod.run !== 'function') throw new Error(`bench/suites/${file}.ts exports no run()`);
    const figures = await withinLimit(mod.run({ quick, log }), SUITE_LIMIT_MS);
    const ms = took();
    out(`  done in ${(ms / 1000).toFixed(1)} s`);
    return { ms, quick, at, figures };
  } catch (error) {
    const message = (error as Error).stack ?? String(error);
    const ms = took();
    out(`  FAILED after ${(ms / 1000).toFixed(1)} s: ${message}`);
    return { ms, quick, at, error: message };
  } finally {
    clearInterval(beat);
  }
}

/** True when every suite ran and closed what it opened; otherwise says which did not. */
function verdict(outcomes: Record<string, SuiteOutcome>, out: (line: string) => void): boolean {
  const all = Object.entries(outcomes);
  const failed = all.filter(([, o]) => o.error).map(([name]) => name);
  const leaking = all.filter(([, o]) => o.leftOpen).map(([name]) => name);
  if (failed.length > 0) out(`${failed.length} of ${all.length} suites FAILED: ${failed.join(', ')}`);
  if (leaking.length > 0) out(`suites that left resources open: ${leaking.join(', ')}`);
  return failed.length === 0 && leaking.length === 0;
}

function writeResults(outcomes: Record<string, SuiteOutcome>): void {
  let previous: { suites?: Record<string, SuiteOutcome> } = {};
  try {
    previous = JSON.parse(readFileSync(RESULTS, 'utf8'));
  } catch {
    // First run, or an unreadable file: start afresh.
  }
  const results = {
    updated: new Date().toISOString(),
    node: process.version,
    suites: { ...(previous.suites ?? {}), ...outcomes },
  };
  writeFileSync(RESULTS, `${JSON.stringify(results, null, 2)}\n`);
}

/** One table: suite, figure (flattened path), value. */
export function formatSummary(outcomes: Record<string, SuiteOutcome>): string {
  const rows: [string, string, string][] = [];
  for (const [suite, o] of Object.entries(outcomes)) {
    if (o.error) rows.push([suite, 'FAILED', o.error.split('\n')[0] ?? '']);
    else {
      for (const [path, value] of flatten(o.figures ?? {})) rows.push([suite, path, value]);
      rows.push([suite, 'suite time', `${(o.ms / 1000).toFixed(1)} s`]);
    }
    if (o.leftOpen) rows.push([suite, 'LEFT OPEN', o.leftOpen.join(', ')]);
  }
  const w0 = Math.max(5, ...rows.map((r) => r[0].length));
  const w1 = Math.max(6, ...rows.map((r) => r[1].length));
  const line = (r: [string, string, string]) => `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`;
  return [
    line(['suite', 'figure', 'value']),
    line(['-'.repeat(w0), '-'.repeat(w1), '-----']),
    ...rows.map(line),
  ].join('\n');
}

function flatten(value: unknown, prefix = ''): [string, string][] {
  if (value === null || value === undefined) return [[prefix, String(value)]];
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null))
      return [[prefix, value.map(show).join(', ')]];
    return value.flatMap((v, i) => flatten(v, `${prefix}[${i}]`));
  }
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
      flatten(v, prefix ? `${prefix}.${k}` : k),
    );
  }
  return [[prefix, show(value)]];
}

function show(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v);
}
