// Helpers for the API tests: the real app over a fresh dynalite table, a fixed clock, and
// small builders for nodes (with a load report) and VMs in a given state.
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import { createApp } from '../../functions/api/app.ts';
import { apiDeps } from '../../functions/api/deps.ts';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import type { LoadFactors } from '../../shared/domain/types.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { type LoadReport, registerNode, renewLease } from '../../shared/storage/nodes.ts';
import {
  createVm,
  markRunning,
  markSuspended,
  requestState,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';

export const TOKEN = 'test-token-0123456789';
export const NOW = 1_800_000_000_000;

export interface TestApi {
  clients: Clients;
  app: ReturnType<typeof createApp>;
  /** Sends a request with the bearer token (unless `auth: false`) and JSON body when given. */
  call(
    method: string,
    path: string,
    options?: { body?: unknown; raw?: BodyInit; headers?: Record<string, string>; auth?: boolean },
  ): Promise<Response>;
  /** Every item in the table, sorted: to prove a rejected request changed nothing. */
  snapshot(): Promise<unknown[]>;
}

export async function anApi(overrides: Partial<Parameters<typeof apiDeps>[0]> = {}): Promise<TestApi> {
  const clients = await freshStores();
  let seq = 0;
  const app = createApp(
    apiDeps({
      clients,
      auth: { mode: 'token', token: TOKEN },
      clock: () => NOW,
      newId: (prefix) => `${prefix}-${String(++seq).padStart(4, '0')}`,
      logError: () => {},
      ...overrides,
    }),
  );
  return {
    clients,
    app,
    call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.auth !== false) headers.authorization ??= `Bearer ${TOKEN}`;
      let body: BodyInit | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      return Promise.resolve(app.request(path, { method, headers, ...(body !== undefined ? { body } : {}) }));
    },
    async snapshot() {
      const out = await clients.doc.send(
        new ScanCommand({ TableName: clients.tableName, ConsistentRead: true }),
      );
      return (out.Items ?? []).sort((a, b) => String(a.pk).localeCompare(String(b.pk)));
    },
  };
}

const weights = { cpu: 1, io: 0.5, mem: 0.25 };

/** A live node whose last report carries `load` spread over the given VMs. */
export async function aNode(
  clients: Clients,
  id: string,
  options: {
    load?: number;
    live?: boolean;
    vms?: Record<string, number>;
    memCapacityPages?: number;
    /** Anti-affinity groups of the reported VMs. */
    groups?: Record<string, string>;
    weights?: { cpu: number; io: number; mem: number };
  } = {},
) {
  const live = options.live ?? true;
  const leaseMs = 10_000;
  await registerNode(clients, {
    spec: {
      id,
      capacity: 4,
      weights: options.weights ?? weights,
      memCapacityPages: options.memCapacityPages ?? 4096,
    },
    incarnation: `inc-${id}`,
    now: live ? NOW : NOW - 2 * leaseMs,
    leaseMs,
  });
  if (!live) return;
  const vms: LoadReport['vms'] = {};
  for (const [vm, load] of Object.entries(options.vms ?? {})) {
    const factors: LoadFactors = { cpu: load, io: 0, mem: 0 };
    const group = options.groups?.[vm];
    vms[vm] = {
      factors,
      load: load * (options.weights ?? weights).cpu,
      memPages: 16,
      pinned: false,
      fence: 1,
      busy: false,
      digest: `digest-${vm}`,
      ...(group !== undefined ? { group } : {}),
    };
  }
  const total = options.load ?? Object.values(options.vms ?? {}).reduce((a, b) => a + b, 0);
  await renewLease(clients, {
    id,
    incarnation: `inc-${id}`,
    now: NOW,
    leaseMs,
    report: {
      at: NOW,
      total,
      vms,
      steal: 0,
      utilisation: 0.5,
    },
  });
}

/** A VM on `owner` brought to `state` through the real transitions. */
export async function aVm(
  clients: Clients,
  id: string,
  owner: string,
  state: 'PENDING' | 'RUNNING' | 'SUSPENDED' | 'DELETING' = 'RUNNING',
  extra: { pinned?: boolean; group?: string } = {},
): Promise<VmRecord> {
  let vm = await createVm(clients, { id, owner, guest: { kind: 'cpu' }, memPages: 16, ...extra }, NOW - 1000);
  if (state === 'PENDING') return vm;
  vm = await markRunning(clients, { id, node: owner, fence: 1, now: NOW - 900 });
  if (state === 'RUNNING') return vm;
  if (state === 'DELETING') return requestState(clients, { id, fence: 1, want: 'DELETING', now: NOW - 800 });
  await requestState(clients, { id, fence: 1, want: 'SUSPENDING', now: NOW - 800 });
  return markSuspended(clients, {
    id,
    node: owner,
    fence: 1,
    image: { manifest: `images/${id}/1.json`, seq: 1, digest: 'd1', vtod: NOW - 700 },
    now: NOW - 700,
  });
}

export const PROBLEM = 'application/problem+json';

/** The API on a local port over fresh stores seeded by `seed`, for a suite that drives the `seesaw`
 *  CLI against it: started before the suite's tests, closed after them. */
export function aServedApi(token: string, seed: (clients: Clients) => Promise<void>) {
  let server: ApiServer | undefined;
  const served = {} as { clients: Clients; url: string };
  beforeAll(async () => {
    served.clients = await freshStores();
    await seed(served.clients);
    server = await startApiServer({ clients: served.clients, token, port: 0 });
    served.url = server.url;
  });
  afterAll(() => server?.close());
  return served;
}
