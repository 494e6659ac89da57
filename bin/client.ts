// A small typed client of the Seesaw HTTP API for the CLI (and scripts): one method per route,
// each request carrying a bearer token (local cluster) or a SigV4 signature (deployed stack).
// Failures are errors with a one-line message.
import { randomUUID } from 'node:crypto';
import type { NodeView, VmView } from '../functions/api/schemas.ts';
import type { Plan } from '../shared/domain/plans.ts';
import type { BalancingConfig } from '../shared/domain/types.ts';
import type { MigrationRecord } from '../shared/storage/migrations.ts';
import type { ModuleRecord } from '../shared/storage/modules.ts';
import type { RunRecord } from '../shared/storage/runs.ts';
import { type Connection, isLoopback } from './connection.ts';
import type { Signer } from './sigv4.ts';

export { type Connection, type ConnectionOptions, resolveConnection } from './connection.ts';

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

export type { MigrationRecord, ModuleRecord, NodeView, Plan, RunRecord, VmView };

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
  cpuLimit?: number;
  memPages?: number;
  group?: string;
  pinned?: boolean;
  params?: Record<string, number>;
  series?: number[];
  restartPolicy?: { kind: 'never' | 'on-failure'; maxRetries?: number };
}

/** API Gateway's IAM authorizer refused the signature or the principal: one line on what to check. */
function iamRefused(connection: Connection & { auth: 'iam' }, body: unknown): Error {
  const message = (body as { message?: string; Message?: string } | undefined)?.message ?? 'Forbidden';
  return new Error(
    `403 ${message}: the API at ${connection.api} refused the SigV4-signed request; your AWS credentials (check \`aws sts get-caller-identity\`) need execute-api:Invoke on it, in region ${connection.region}`,
  );
}

export type SeesawClient = ReturnType<typeof createClient>;

/** `connection` may be a function, resolved once on the first request (so flags are read lazily). */
export function createClient(
  connection: Connection | (() => Promise<Connection>),
  fetchImpl: typeof fetch = fetch,
  signer?: Signer,
) {
  let resolved: Promise<Connection> | undefined;
  const connect = () => {
    resolved ??= typeof connection === 'function' ? connection() : Promise.resolve(connection);
    return resolved;
  };
  let sign: Promise<Signer> | undefined;
  const signerFor = (region: string) => {
    sign ??= signer
      ? Promise.resolve(signer)
      : import('./sigv4.ts').then(({ createSigner }) => createSigner(region));
    return sign;
  };
  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    idempotencyKey?: string,
  ): Promise<T> {
    const connection = await connect();
    const url = `${connection.api}${path}`;
    let headers: Record<string, string> = {};
    const payload = body !== undefined ? JSON.stringify(body) : undefined;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    if (connection.auth === 'token') headers.authorization = `Bearer ${connection.token}`;
    else {
      try {
        const signed = await (await signerFor(connection.region))({
          method,
          url,
          headers,
          ...(payload !== undefined ? { body: payload } : {}),
        });
        // fetch sets Host itself, to the same value that was signed.
        const { host: _host, ...rest } = signed;
        headers = rest;
      } catch (error) {
        throw new Error(`cannot sign the request for IAM auth: ${(error as Error).message}`);
      }
    }
    let res: Response;
    try {
      res = await fetchImpl(url, {
        method,
        headers,
        ...(payload !== undefined ? { body: payload } : {}),
      });
    } catch {
      throw new Error(
        isLoopback(connection.api)
          ? `cannot reach the API at ${connection.api} — is \`npm start\` running?`
          : `cannot reach the API at ${connection.api} (from ${connection.via})`,
      );
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new Error(`the API at ${connection.api} answered ${res.status} with something that is not JSON`);
    }
    if (res.status === 403 && connection.auth === 'iam') throw iamRefused(connection, parsed);
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
    connection: connect,
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
    patchVm: (
      id: string,
      patch: {
        targetLoad?: number | null;
        cpuLimit?: number | null;
        pinned?: boolean;
        group?: string | null;
      },
    ) => request<VmView>('PATCH', vm(id), patch),
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
    balance: (dryRun: boolean) => request<RunRecord & { plan?: Plan }>('POST', '/v1/balance', { dryRun }),
    listPlans: (limit?: number) => request<Page<Plan>>('GET', `/v1/plans${q({ limit })}`),
    applyPlan: (id: string) => request<Plan>('POST', `/v1/plans/${encodeURIComponent(id)}/apply`),
    listRuns: (limit?: number) => request<Page<RunRecord>>('GET', `/v1/runs${q({ limit })}`),
    listMigrations: (filter: { limit?: number; vm?: string } = {}) =>
      request<Page<MigrationRecord>>('GET', `/v1/migrations${q(filter)}`),
    cluster: () => request<ClusterView>('GET', '/v1/cluster'),
  };
}
