// A real `seesaw up` cluster for end-to-end tests: the CLI starts dynalite, s3rver, the API, the
// balancer, the reaper and one agent process per node in a temporary directory.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { stopSeesawUp } from '../support/seesaw-up.ts';

export interface UpOptions {
  nodes: number;
  vms: number;
  /** Seconds between balancing rounds. */
  interval?: number;
  env?: Record<string, string>;
}

export interface LiveCluster {
  dir: string;
  api: string;
  token: string;
  /** The `seesaw up` process. */
  pid: number | undefined;
  /** Everything `seesaw up` printed so far. */
  output(): string;
  /** An API call; throws with the status and body on anything but 2xx. */
  call<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T>;
  /** Polls `probe` every 500 ms until it returns a value; throws, with the cluster's output, after `timeoutMs`. */
  until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T>;
  /** Whether the `seesaw up` process is still running. */
  running(): boolean;
  stop(): Promise<void>;
}

/**
 * Polls `probe` every 500 ms until it returns a value; after `timeoutMs` throws with the last error
 * and what the cluster said (`said`).
 */
export async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  said: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'none';
  for (;;) {
    const value = await probe().catch((error: Error) => {
      last = error.message;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what} (last error: ${last})\n--- seesaw up said:\n${said()}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function startCluster(options: UpOptions): Promise<LiveCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-e2e-'));
  let output = '';
  const up: ChildProcess = spawn(
    process.execPath,
    [
      'bin/seesaw.js',
      'up',
      '--data',
      dir,
      '--port',
      '0',
      '--nodes',
      String(options.nodes),
      '--vms',
      String(options.vms),
      '--interval',
      String(options.interval ?? 1),
    ],
    {
      env: {
        ...process.env,
        SEESAW_LEASE_MS: '6000',
        SEESAW_REPORT_MS: '500',
        LOG_LEVEL: 'info',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  up.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  up.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  let api = '';
  let token = '';

  const call = async <T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> => {
    const raw = body instanceof Uint8Array;
    const response = await fetch(`${api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': contentType ?? 'application/json' }),
      },
      ...(body === undefined
        ? {}
        : { body: raw ? new Blob([body as Uint8Array<ArrayBuffer>]) : JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} → ${response.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };

  const until = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) =>
    pollUntil(what, timeoutMs, probe, () => output.slice(-20_000));

  const stop = async () => {
    if (up.signalCode === null) await stopSeesawUp(up);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const line = await until(
      'the API line',
      240_000,
      async () => output.match(/API\s+(\S+)\s+token\s+(\S+)/) ?? undefined,
    );
    api = line[1]!;
    token = line[2]!;
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    dir,
    api,
    token,
    pid: up.pid,
    output: () => output,
    call,
    until,
    running: () => up.exitCode === null && up.signalCode === null,
    stop,
  };
}

/** A cluster started before the suite's tests (up to 5 minutes) and stopped after them. */
export function clusterForSuite(options: UpOptions): LiveCluster {
  const cluster = {} as LiveCluster;
  beforeAll(async () => {
    Object.assign(cluster, await startCluster(options));
  }, 300_000);
  afterAll(() => cluster.stop?.(), 60_000);
  return cluster;
}

/** What the tests read of `GET /v1/nodes`. */
export interface NodeView {
  id: string;
  live: boolean;
  leaseUntil: number;
  draining: boolean;
  report?: { at: number; vmCount: number };
}

/** What the tests read of `GET /v1/vms`. */
export interface VmView {
  id: string;
  owner: string;
  state: string;
  guest: { kind: string };
  digest: string | null;
  reportedAt: number | null;
  reason: string | null;
  migration: { to: string } | null;
}

export const listNodes = async (c: LiveCluster) =>
  (await c.call<{ items: NodeView[] }>('GET', '/v1/nodes')).items;

export async function listVms(c: LiveCluster): Promise<VmView[]> {
  const all: VmView[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: VmView[]; next: string | null } = await c.call(
      'GET',
      `/v1/vms?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    all.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return all;
}
