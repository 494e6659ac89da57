// What the API commands share: the connection flags, printing (tables or --json), and waiting
// for a VM to reach a state with a progress bar.
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import {
  ApiError,
  type ConnectionOptions,
  createClient,
  resolveConnection,
  type SeesawClient,
  type VmView,
} from '../client.ts';

export interface CommonOptions extends ConnectionOptions {
  json?: boolean;
}

/** Adds --json to a command that talks to the API (the connection options are global). */
export function withConnection(command: Command): Command {
  return command.option('--json', 'print JSON for scripts instead of a table');
}

/** A client whose connection is resolved from the global options on its first request. */
export function clientFor(options: CommonOptions): SeesawClient {
  return createClient(() => resolveConnection(options));
}

export function printJson(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A plain text table: one header row, columns padded to their widest cell. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function printTable(headers: string[], rows: (string | number)[][], empty = '(none)') {
  console.log(rows.length ? table(headers, rows) : empty);
}

/** A number for people: up to 3 decimals, no trailing zeros; '-' when absent. */
export const num = (value: number | null | undefined, digits = 3) =>
  value === null || value === undefined ? '-' : String(Number(value.toFixed(digits)));

/** A fraction for people, as a percentage (CV, utilisation); --json keeps the fraction. */
export const pct = (value: number | null | undefined) =>
  value === null || value === undefined ? '-' : `${(value * 100).toFixed(1)}%`;

/** `1 pair`, `2 pairs`. */
export const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Tables are laid out to fit this many columns. */
export const WIDTH = 100;

/** Shortest abbreviation shown, like git's 7 hex digits after the `run-` prefix. */
export const SHORT_ID = 11;

/**
 * Git's way of abbreviating commits: each id shortened to the shortest prefix of at least `min`
 * characters that no other id in `ids` shares. `resolvePrefix` takes such a prefix back.
 */
export function abbreviate(ids: readonly string[], min = SHORT_ID): (id: string) => string {
  const unique = [...new Set(ids)];
  return (id) => {
    for (let n = min; n < id.length; n++) {
      const prefix = id.slice(0, n);
      if (!unique.some((other) => other !== id && other.startsWith(prefix))) return prefix;
    }
    return id;
  };
}

/** The one id that starts with `prefix` (or with `kind-prefix`); a clear error otherwise. */
export function resolvePrefix(prefix: string, ids: readonly string[], kind: string): string {
  const full = (id: string) => id === prefix || id.startsWith(prefix) || id.startsWith(`${kind}-${prefix}`);
  const matches = [...new Set(ids.filter(full))];
  if (matches.length === 1) return matches[0] as string;
  if (!matches.length)
    throw new Error(`no ${kind} id starts with "${prefix}" (among the ${ids.length} most recent)`);
  const show = abbreviate(matches, prefix.length + 1);
  throw new Error(
    `"${prefix}" is ambiguous: ${matches.slice(0, 5).map(show).join(', ')}${matches.length > 5 ? ', …' : ''}`,
  );
}

/** A time for a table: 19:24:28Z today (UTC), 11-29T19:24Z before. */
export function clock(ms: number | null | undefined, now = Date.now()): string {
  if (!ms) return '-';
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 10) === new Date(now).toISOString().slice(0, 10)
    ? `${iso.slice(11, 19)}Z`
    : `${iso.slice(5, 16)}Z`;
}

/** Wraps text to `width` columns, continuation lines indented by `indent` spaces. */
export function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

export const when = (ms: number | null | undefined) =>
  ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '-';

/** Reads a positive number option, failing with a one-line reason. */
export function numberOption(name: string, value: string | undefined, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'}, got "${value}"`);
  return n;
}

export interface WaitStep {
  /** Shown next to the bar. */
  label: string;
  /** Reached when this is true of the VM (undefined = the VM is gone). */
  reached: (vm: VmView | undefined) => boolean;
}

/**
 * Polls GET /v1/vms/{id} until the last step is reached, moving a progress bar (on a terminal)
 * through the steps. `failed` ends the wait early with its message (e.g. an aborted migration).
 */
export async function waitForVm(
  client: SeesawClient,
  id: string,
  steps: WaitStep[],
  options: { timeoutMs: number; quiet: boolean; failed?: (vm: VmView | undefined) => string | undefined },
): Promise<VmView | undefined> {
  const bar = options.quiet
    ? undefined
    : new SingleBar({
        format: `${id} [{bar}] {step}`,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: true,
      });
  bar?.start(steps.length, 0, { step: 'waiting' });
  const deadline = Date.now() + options.timeoutMs;
  // Ctrl-C stops the waiting, not the request: say what is still going on and how to follow it.
  let last: VmView | undefined;
  const onInterrupt = () => {
    bar?.stop();
    process.stderr.write(`\n${inFlight(id, last)}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  try {
    for (;;) {
      let vm: VmView | undefined;
      try {
        vm = await client.getVm(id);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) throw error;
      }
      last = vm;
      const failure = options.failed?.(vm);
      if (failure) throw new Error(failure);
      let done = 0;
      steps.forEach((step, i) => {
        if (step.reached(vm)) done = i + 1;
      });
      bar?.update(done, { step: steps[Math.max(0, done - 1)]?.label ?? 'waiting' });
      if (done === steps.length) return vm;
      if (Date.now() > deadline)
        throw new Error(
          `timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${id} (now ${vm ? vm.state : 'gone'}); it may still finish — check \`seesaw vm show ${id}\``,
        );
      await new Promise((r) => setTimeout(r, 400));
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    bar?.stop();
  }
}

/** One line on what an interrupted wait leaves running. */
export function inFlight(id: string, vm: VmView | undefined): string {
  const follow = `follow it with \`seesaw vm show ${id}\``;
  if (!vm) return `stopped waiting; ${id} was not seen yet — ${follow}`;
  const m = vm.migration;
  if (m)
    return `stopped waiting; still in flight: migration ${m.id} of ${id} ${m.from} → ${m.to} (${m.phase}) — ${follow}`;
  return `stopped waiting; ${id} is ${vm.state} on ${vm.owner} and carries on — ${follow}`;
}
