// The human-readable table of `seesaw simulate`.
import type { SimResult, StrategyResult } from './types.ts';

const num = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined ? '—' : Number.isInteger(x) ? String(x) : x.toFixed(digits);

/** CV for people: a percentage (the JSON keeps the fraction). */
const pct = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined ? '—' : `${(x * 100).toFixed(digits)}%`;

const bytes = (b: number) => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

/** Rows of label → Seesaw, greedy, none. */
export function formatTable(result: SimResult): string {
  const columns: [string, StrategyResult][] = [
    ['seesaw', result],
    ['greedy', result.baselines.greedy],
    ['none', result.baselines.none],
  ];
  const trace = result.overloadNodeTicks !== undefined;
  const rows: [string, (r: StrategyResult) => string][] = [
    ['initial max load', (r) => num(r.initial.maxLoad)],
    ['initial CV', (r) => pct(r.initial.cv)],
    ['final max load', (r) => num(r.final.maxLoad)],
    ['final max / lower bound', (r) => num(r.final.maxLoad / result.lowerBound)],
    ['final CV', (r) => pct(r.final.cv, 2)],
    ['migrations', (r) => num(r.migrations)],
    ['bytes moved', (r) => bytes(r.bytesMoved)],
    ['rounds to CV 10%', (r) => num(r.roundsToCv['0.10'])],
    ['rounds to CV 5%', (r) => num(r.roundsToCv['0.05'])],
    ['migrations to CV 10%', (r) => num(r.migrationsToCv['0.10'])],
    ['migrations to CV 5%', (r) => num(r.migrationsToCv['0.05'])],
    ...(trace
      ? ([
          ['overload node-ticks', (r) => num(r.overloadNodeTicks)],
          ['steal (unit-ticks)', (r) => num(r.steal, 1)],
        ] as [string, (r: StrategyResult) => string][])
      : []),
  ];
  const header = ['', ...columns.map(([name]) => name)];
  const body = rows.map(([label, f]) => [label, ...columns.map(([, r]) => f(r))]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) =>
    row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  const title = `${result.scenario}: ${result.nodes} nodes, ${result.vms} VMs, ${result.rounds} rounds, lower bound ${num(result.lowerBound)}`;
  return [title, fmt(header), ...body.map(fmt)].join('\n');
}
