// A small typed client of the Seesaw HTTP API for the CLI (and scripts): where the API is, which
// token to send, and one method per route. Failures are errors with a one-line message.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { NodeView, VmView } from '../functions/api/schemas.ts';
import type { BalancingConfig } from '../shared/domain/types.ts';
import type { MigrationRecord } from '../shared/storage/migrations.ts';
import type { ModuleRecord } from '../shared/storage/modules.ts';
import type { RunRecord } from '../shared/storage/runs.ts';

export const DEFAULT_API = 'http://127.0.0.1:8787';
export const DEFAULT_DATA_DIR = '.seesaw';

export interface ConnectionOptions {
  api?: string;
  token?: string;
  /** The cluster's data directory (holds `token` and `endpoints.json`). */
  data?: string;
}

export interface Connection {
  api: string;
  token: string;
}

/** The API URL (--api, SEESAW_API, DIR/endpoints.json, default) and token (--token, SEESAW_TOKEN, DIR/token). */
export function resolveConnection(
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  const dir = resolve(options.data ?? env.SEESAW_DATA ?? DEFAULT_DATA_DIR);
  let api = options.api ?? env.SEESAW_API;
  if (!api) {
    const endpoints = join(dir, 'endpoints.json');
    if (existsSync(endpoints)) {
      try {
        api = (JSON.parse(readFileSync(endpoints, 'utf8')) as { api?: string }).api;
      } catch {
        // a half-written file: fall back to the default
      }
    }
  }
  let token = options.token ?? env.SEESAW_TOKEN;
  if (!token) {
    const file = join(dir, 'token');
    if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
  }
  if (!token)
    throw new Error(
      `no API token: pass --token, set SEESAW_TOKEN, or start the cluster with \`npm start\` (it writes ${join(dir, 'token')})`,
    );
  return { api: (api ?? DEFAULT_API).replace(/\/+$/, ''), token };
}

interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  errors?: { path: string; message: string }[];
}

/** The API answered with a problem. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title ?? 'error'}: ${problem.detail ?? 'no detail'}`);
  }
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export type { MigrationRecord, ModuleRecord, NodeView, RunRecord, VmView };

export interface ClusterView {
  nodes: { total: number; live: number; draining: number };
  vms: { total: number; byState: Record<string, number>; migrating: number };
  imbalance: { cv: number; maxOverMean: number; maxLoad: number; mean: number };
  loads: Record<string, number>;
  lastRun: RunRecord | null;
}

export interface CreateVmRequest {
  guest: string;
  node?: string;
  targetLoad?: number;
  memPages?: number;
  group?: string;
  pinned?: boolean;
  params?: Record<string, number>;
  series?: number[];
  restartPolicy?: { kind: 'never' | 'on-failure'; maxRetries?: number };
}

export type SeesawClient = ReturnType<typeof createClient>;

export function createClient(connection: Connection, fetchImpl: typeof fetch = fetch) {
  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    idempotencyKey?: string,
  ): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${connection.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    let res: Response;
    try {
      res = await fetchImpl(`${connection.api}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new Error(`cannot reach the API at ${connection.api} — is \`npm start\` running?`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new Error(`the API at ${connection.api} answered ${res.status} with something that is not JSON`);
    }
    if (!res.ok) throw new ApiError(res.status, (parsed ?? {}) as Problem);
    return parsed as T;
  }
  const q = (params: Record<string, string | number | undefined>) => {
    const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined);
    return entries.length
      ? `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)])).toString()}`
      : '';
  };
  const vm = (id: string) => `/v1/vms/${encodeURIComponent(id)}`;
  const node = (id: string) => `/v1/nodes/${encodeURIComponent(id)}`;

  return {
    connection,
    /** A retry of the same create with the same key never makes a second VM. */
    createVm: (body: CreateVmRequest, idempotencyKey: string = randomUUID()) =>
      request<VmView>('POST', '/v1/vms', body, idempotencyKey),
    listVms: (filter: { node?: string; state?: string; limit?: number; cursor?: string } = {}) =>
      request<Page<VmView>>('GET', `/v1/vms${q(filter)}`),
    /** Every VM matching the filter, following the pages. */
    async allVms(filter: { node?: string; state?: string } = {}): Promise<VmView[]> {
      const out: VmView[] = [];
      let cursor: string | undefined;
      do {
        const page = await request<Page<VmView>>('GET', `/v1/vms${q({ ...filter, limit: 500, cursor })}`);
        out.push(...page.items);
        cursor = page.next ?? undefined;
      } while (cursor);
      return out;
    },
    getVm: (id: string) => request<VmView>('GET', vm(id)),
    patchVm: (id: string, patch: { targetLoad?: number | null; pinned?: boolean; group?: string | null }) =>
      request<VmView>('PATCH', vm(id), patch),
    suspendVm: (id: string) => request<VmView>('POST', `${vm(id)}/suspend`),
    resumeVm: (id: string, nodeId?: string) =>
      request<VmView>('POST', `${vm(id)}/resume`, nodeId ? { node: nodeId } : undefined),
    restartVm: (id: string, nodeId?: string) =>
      request<VmView>('POST', `${vm(id)}/restart`, nodeId ? { node: nodeId } : undefined),
    migrateVm: (id: string, to: string) => request<VmView>('POST', `${vm(id)}/migrate`, { to }),
    /** The VM while its owner stops it, or undefined once it is gone. */
    deleteVm: (id: string) => request<VmView | undefined>('DELETE', vm(id)),
    listModules: () => request<{ items: ModuleRecord[] }>('GET', '/v1/modules'),
    listNodes: () => request<{ items: NodeView[] }>('GET', '/v1/nodes'),
    getNode: (id: string) => request<NodeView>('GET', node(id)),
    patchNode: (
      id: string,
      patch: {
        draining?: boolean;
        weights?: Partial<NodeView['weights']>;
        loadOverride?: number | null;
        hints?: Record<string, number>;
      },
    ) => request<NodeView>('PATCH', node(id), patch),
    getConfig: () => request<BalancingConfig>('GET', '/v1/config/balancing'),
    putConfig: (patch: Partial<BalancingConfig>) =>
      request<BalancingConfig>('PUT', '/v1/config/balancing', patch),
    balance: (dryRun: boolean) => request<RunRecord>('POST', '/v1/balance', { dryRun }),
    listRuns: (limit?: number) => request<Page<RunRecord>>('GET', `/v1/runs${q({ limit })}`),
    listMigrations: (filter: { limit?: number; vm?: string } = {}) =>
      request<Page<MigrationRecord>>('GET', `/v1/migrations${q(filter)}`),
    cluster: () => request<ClusterView>('GET', '/v1/cluster'),
  };
}
