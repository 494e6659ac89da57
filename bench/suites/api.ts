// API latency: p50/p99 of GET /v1/vms/{id} and POST /v1/vms against the app served over HTTP by
// @hono/node-server, on an in-memory dynalite this suite starts on a free port. Requests are
// sequential (one client, keep-alive), so the figures are per-request latency, not throughput.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer } from '../../functions/api/server.ts';
import { ensureTableAndBucket, LOCAL_CREDENTIALS, startLocalStores } from '../../shared/local/stores.ts';
import { createClients } from '../../shared/storage/clients.ts';
import { registerNode, renewLease } from '../../shared/storage/nodes.ts';
import { createVm } from '../../shared/storage/vms.ts';

export const name = 'api';

const TOKEN = 'bench-token';
const NODES = 8;

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

async function timed(count: number, request: (i: number) => Promise<Response>, expectStatus: number) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const res = await request(i);
    await res.arrayBuffer();
    samples.push(performance.now() - started);
    if (res.status !== expectStatus)
      throw new Error(`request ${i} answered ${res.status}, expected ${expectStatus}`);
  }
  samples.sort((a, b) => a - b);
  return {
    n: count,
    p50Ms: round2(percentile(samples, 50)),
    p99Ms: round2(percentile(samples, 99)),
    maxMs: round2(samples[samples.length - 1] ?? Number.NaN),
  };
}

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const scratch = mkdtempSync(join(tmpdir(), 'seesaw-bench-api-'));
  const stores = await startLocalStores({ scratchDir: scratch });
  const clients = createClients({
    tableName: 'seesaw-bench-api',
    bucketName: 'seesaw-bench-api',
    region: 'us-east-1',
    dynamoEndpoint: stores.dynamoEndpoint,
    s3Endpoint: stores.s3Endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const server = await startApiServer({ clients, token: TOKEN, port: 0, logError: () => {} }).catch(
    async (e) => {
      await stores.close();
      throw e;
    },
  );
  try {
    await ensureTableAndBucket(clients);
    const now = Date.now();
    const hour = 3_600_000;
    for (let n = 0; n < NODES; n++) {
      const id = `node-${n}`;
      await registerNode(clients, {
        spec: { id, capacity: 4, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 1 << 20 },
        incarnation: 'bench',
        now,
        leaseMs: hour,
      });
      await renewLease(clients, {
        id,
        incarnation: 'bench',
        now,
        leaseMs: hour,
        report: {
          at: now,
          total: n,
          vms: {},
          steal: 0,
          utilisation: 0,
        },
      });
    }
    const seeded = ctx.quick ? 50 : 200;
    for (let i = 0; i < seeded; i++)
      await createVm(
        clients,
        { id: `seed-${i}`, owner: `node-${i % NODES}`, guest: { kind: 'idle' }, memPages: 16 },
        now,
      );

    const headers = { authorization: `Bearer ${TOKEN}` };
    const get = (i: number) => fetch(`${server.url}/v1/vms/seed-${i % seeded}`, { headers });
    const post = () =>
      fetch(`${server.url}/v1/vms`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ guest: 'idle', targetLoad: 0.5 }),
      });
    const postKeyed = (i: number) =>
      fetch(`${server.url}/v1/vms`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': `bench-${i}` },
        body: JSON.stringify({ guest: 'idle' }),
      });

    const n = ctx.quick ? 100 : 400;
    await timed(30, get, 200); // warm up the JIT, the connection pool and dynalite
    const getVm = await timed(n, get, 200);
    ctx.log(`GET /v1/vms/{id}: p50 ${getVm.p50Ms} ms, p99 ${getVm.p99Ms} ms over ${n} requests`);
    const postVm = await timed(Math.floor(n / 2), post, 201);
    ctx.log(`POST /v1/vms: p50 ${postVm.p50Ms} ms, p99 ${postVm.p99Ms} ms over ${postVm.n} requests`);
    const postIdempotent = await timed(Math.floor(n / 4), postKeyed, 201);
    ctx.log(
      `POST /v1/vms with Idempotency-Key: p50 ${postIdempotent.p50Ms} ms, p99 ${postIdempotent.p99Ms} ms`,
    );
    return {
      getVm,
      postVm,
      postVmIdempotent: postIdempotent,
      // Latency on a shared machine tracks its load: the 1-minute load average while measuring.
      loadAverage: round2(loadavg()[0] ?? 0),
      setup: {
        nodes: NODES,
        vmsSeeded: seeded,
        transport: 'HTTP over loopback, keep-alive',
        store: 'dynalite (in memory)',
      },
    };
  } finally {
    await server.close();
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}
