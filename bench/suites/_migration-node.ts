// One node of the migration bench, as both of its topologies build it: in the bench's own process
// ("oneProcess") and in a child process of its own (_migration-agent.ts, "processes", as `seesaw up`
// runs each agent). Both call startBenchAgent, so the two cannot drift apart in kernel, agent
// config or loop periods. Also what a node's process records for the bench's per-move lines: the
// log entries the suite reads, and its GC and event-loop stalls. (A leading underscore keeps the
// harness from taking it for a suite.)
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createAgent } from '../../node-agent/agent/agent.ts';
import { type RunningAgent, runAgent } from '../../node-agent/agent/run.ts';
import { createKernel } from '../../node-agent/kernel/index.ts';
import { DEFAULT_TIMINGS } from '../../shared/domain/protocol.ts';
import type { Logger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import type { ImageStore } from '../../shared/storage/image-store.ts';

export const NODES = ['bench-a', 'bench-b'];
/** The agents' report period; the bench waits past one before each move (see moveBackAndForth). */
export const REPORT_MS = 500;

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} };

/** One agent on its own kernel, registered and running on the stores `clients` reach; its loop, to stop. */
export async function startBenchAgent(
  id: string,
  deps: { clients: Clients; images: ImageStore; log: Logger },
): Promise<RunningAgent> {
  const { clients, images, log } = deps;
  const spec = { id, capacity: 40_000_000, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 8192 };
  const kernel = createKernel(
    { nodeId: id, capacity: spec.capacity, weights: spec.weights, tickMs: 20, clock: Date.now },
    { images },
  );
  const agent = createAgent(
    { clients, kernel, clock: Date.now, log, images },
    {
      node: spec,
      lease: { leaseMs: 5000, fenceMarginMs: 1000 },
      checkpointMs: 60_000,
      cooldownMs: 0,
      timings: DEFAULT_TIMINGS,
    },
  );
  await agent.register();
  return runAgent(agent, { tickMs: 20, reportMs: REPORT_MS, reconcileMs: 100 }, quiet);
}

/** One line an agent logged, with the time it was logged (epoch ms, the machine's one clock). */
export interface LogEntry {
  level: 'info' | 'warn' | 'error' | 'debug';
  obj: object;
  msg?: string;
  at: number;
}

/** The messages the suite's phase log reads (see phaseLog in migration.ts); every warning and error too. */
const PHASE_MESSAGES = ['image handed over', 'migrated in', 'prepared for the final delta'];
function wanted(e: LogEntry): boolean {
  if (e.level === 'warn' || e.level === 'error') return true;
  if (e.level === 'debug') return e.msg?.startsWith('pre-copy done') === true;
  return e.msg !== undefined && PHASE_MESSAGES.includes(e.msg);
}

/**
 * An agent's logger that hands the entries the suite reads to `sink` (the phase log itself, or the
 * child's channel to the bench) and drops the rest, so a child sends only a few lines a move.
 */
export function loggerTo(sink: (e: LogEntry) => void): Logger {
  const at = (level: LogEntry['level']) => (obj: object, msg?: string) => {
    const e: LogEntry = { level, obj, at: Date.now(), ...(msg === undefined ? {} : { msg }) };
    if (wanted(e)) sink(e);
  };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

/** A pause of one process: a GC, or an event-loop stall; from `at` (epoch ms), for `ms`. */
export interface Pause {
  at: number;
  ms: number;
}
export interface Pauses {
  gcs: Pause[];
  stalls: Pause[];
  /** The main thread's time on a CPU and waiting for one, so far (see schedstat); absent off Linux. */
  cpu?: CpuTime;
}
export interface CpuTime {
  at: number;
  runMs: number;
  waitMs: number;
}

/**
 * This process's main thread from /proc/self/schedstat: ms on a CPU and ms runnable but waiting for
 * one. On a shared machine the wait says how much of a topology's time went to other work: a node's
 * process that waits for a CPU is slower whatever the protocol does.
 */
function schedstat(): CpuTime | undefined {
  try {
    const [run = '', wait = ''] = readFileSync('/proc/self/schedstat', 'utf8').trim().split(/\s+/);
    return { at: Date.now(), runMs: Number(run) / 1e6, waitMs: Number(wait) / 1e6 };
  } catch {
    return undefined;
  }
}

/**
 * What held this process: garbage collection (from the runtime's gc entries) and event-loop stalls
 * (a 5 ms timer firing late by more than STALL_MS), with their epoch times; `read` gives what was
 * recorded so far, and the main thread's CPU time.
 */
const STALL_MS = 10;
export function recordPauses(): { read(): Pauses; stop(): void } {
  const pauses: Pauses = { gcs: [], stalls: [] };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries())
      pauses.gcs.push({ at: performance.timeOrigin + e.startTime, ms: e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late > STALL_MS) pauses.stalls.push({ at: performance.timeOrigin + last, ms: late });
    last = now;
  }, 5);
  return {
    read() {
      const cpu = schedstat();
      return { ...pauses, ...(cpu ? { cpu } : {}) };
    },
    stop() {
      observer.disconnect();
      clearInterval(timer);
    },
  };
}

/** A node's child process → the bench. */
export type FromAgent =
  | { type: 'ready' }
  | { type: 'log'; entry: LogEntry }
  | { type: 'pauses'; pauses: Pauses }
  | { type: 'stopped' }
  | { type: 'failed'; error: string };
/** The bench → a node's child process. */
export type ToAgent = { type: 'pauses' } | { type: 'stop' };

/** What the bench hands a node's child process (its one argument, as JSON). */
export interface AgentArgs {
  id: string;
  dynamoEndpoint: string;
  s3Endpoint: string;
  tableName: string;
  bucketName: string;
}

const AGENT_ENTRY = join(dirname(fileURLToPath(import.meta.url)), '_migration-agent.ts');
/** How long a child may take to start (tsx compiling the agent, the kernel's wasm, registering) or to stop. */
const CHILD_MS = 60_000;

/** One agent's child process (_migration-agent.ts): its log entries go to `onLog`; it ends when told, or when this process does. */
export function startChild(args: AgentArgs, onLog: (e: LogEntry) => void) {
  const child: ChildProcess = fork(AGENT_ENTRY, [JSON.stringify(args)], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let died: string | undefined;
  let pending: ((p: Pauses) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: FromAgent) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'log') onLog(m.entry);
      if (m.type === 'pauses') pending?.(m.pauses);
      if (m.type === 'failed') {
        died = `agent ${args.id} failed: ${m.error}`;
        reject(new Error(died));
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      died ??= `agent ${args.id} exited (${signal ?? code})`;
      reject(new Error(died));
    });
  });
  const tell = (m: ToAgent) => child.connected && child.send(m);
  return {
    pid: child.pid,
    ready: withTimeout(ready, CHILD_MS, `agent ${args.id} did not start`),
    alive() {
      if (died) throw new Error(died);
    },
    pauses: () =>
      withTimeout(
        new Promise<Pauses>((resolve) => {
          pending = resolve;
          tell({ type: 'pauses' });
        }),
        10_000,
        `agent ${args.id} did not send its pauses`,
      ),
    /** Asks the agent to stop (checkpoint, release its lease) and waits for its exit; kills it after CHILD_MS. */
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        const force = setTimeout(() => child.kill('SIGKILL'), CHILD_MS);
        child.once('exit', () => {
          clearTimeout(force);
          done();
        });
        if (!tell({ type: 'stop' })) child.kill('SIGTERM');
      }),
  };
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}
