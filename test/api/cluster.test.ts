import { beforeAll, describe, expect, it } from 'vitest';
import { guestBinary } from '../../node-agent/guests/index.ts';
import { getBalancingConfig } from '../../shared/storage/config-store.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { aNode, anApi, aVm, NOW, PROBLEM, type TestApi } from './support.ts';

describe('node, balancing, module and cluster routes', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await anApi();
    await aNode(api.clients, 'n1', { vms: { 'vm-1': 3, 'vm-2': 1 } });
    await aNode(api.clients, 'n2', { vms: { 'vm-3': 1 } });
    await aNode(api.clients, 'n3', { live: false });
    await aVm(api.clients, 'vm-1', 'n1');
    await aVm(api.clients, 'vm-2', 'n1');
    await aVm(api.clients, 'vm-3', 'n2');
    await aVm(api.clients, 'vm-4', 'n2', 'SUSPENDED');
  });

  it('lists nodes with liveness, load and effective weights', async () => {
    const res = await api.call('GET', '/v1/nodes');
    expect(res.status).toBe(200);
    const { items } = await res.json();
    expect(items.map((n: { id: string }) => n.id)).toEqual(['n1', 'n2', 'n3']);
    expect(items[0]).toMatchObject({ id: 'n1', live: true, load: 4, report: { vmCount: 2, total: 4 } });
    expect(items[0].report.vms).toBeUndefined();
    expect(items[2]).toMatchObject({ id: 'n3', live: false, report: null });
  });

  it("shows one node with its report's per-VM entries", async () => {
    const node = await (await api.call('GET', '/v1/nodes/n1')).json();
    expect(node.report.vms['vm-1']).toMatchObject({ load: 3, fence: 1, digest: 'digest-vm-1' });
  });

  it('drains and undrains, merges weights, stores hints and multiplies them into effective weights', async () => {
    const res = await api.call('PATCH', '/v1/nodes/n2', {
      body: { draining: true, weights: { cpu: 2 }, hints: { cpu: 0.5, io: 2 } },
    });
    expect(res.status).toBe(200);
    const node = await res.json();
    expect(node).toMatchObject({
      draining: true,
      weights: { cpu: 2, io: 0.5, mem: 0.25 },
      hints: { cpu: 0.5, io: 2 },
      effectiveWeights: { cpu: 1, io: 1, mem: 0.25 },
    });
    await api.call('PATCH', '/v1/nodes/n2', { body: { draining: false } });
    expect((await getNode(api.clients, 'n2')).draining).toBe(false);
  });

  it('sets a load override that the node shows as its load, and clears it with null', async () => {
    const set = await (await api.call('PATCH', '/v1/nodes/n1', { body: { loadOverride: 9 } })).json();
    expect(set).toMatchObject({ loadOverride: 9, load: 9 });
    const cleared = await (await api.call('PATCH', '/v1/nodes/n1', { body: { loadOverride: null } })).json();
    expect(cleared).toMatchObject({ loadOverride: null, load: 4 });
  });

  it('summarises the cluster: counts, and imbalance over live nodes only', async () => {
    const res = await api.call('GET', '/v1/cluster');
    expect(res.status).toBe(200);
    const cluster = await res.json();
    expect(cluster.nodes).toEqual({ total: 3, live: 2, draining: 0 });
    expect(cluster.vms).toMatchObject({ total: 4, byState: { RUNNING: 3, SUSPENDED: 1 }, migrating: 0 });
    expect(cluster.loads).toEqual({ n1: 4, n2: 1 });
    // loads 4 and 1: mean 2.5, stddev 1.5.
    expect(cluster.imbalance.cv).toBeCloseTo(0.6, 10);
    expect(cluster.imbalance.maxOverMean).toBeCloseTo(1.6, 10);
  });

  it('leaves a draining node out of the imbalance', async () => {
    await api.call('PATCH', '/v1/nodes/n2', { body: { draining: true } });
    try {
      const cluster = await (await api.call('GET', '/v1/cluster')).json();
      expect(cluster.nodes.draining).toBe(1);
      // Only n1 (load 4) counts: one node is perfectly even.
      expect(cluster.imbalance).toMatchObject({ cv: 0, mean: 4, maxLoad: 4 });
    } finally {
      await api.call('PATCH', '/v1/nodes/n2', { body: { draining: false } });
    }
  });

  it('reads the balancing config and merges a partial PUT over it', async () => {
    const defaults = await (await api.call('GET', '/v1/config/balancing')).json();
    expect(defaults).toEqual(await getBalancingConfig(api.clients));
    const res = await api.call('PUT', '/v1/config/balancing', {
      body: { thresholdFactor: 1.5, pairing: 'random' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ...defaults, thresholdFactor: 1.5, pairing: 'random' });
    expect((await getBalancingConfig(api.clients)).thresholdFactor).toBe(1.5);
  });

  it('runs a dry-run round that writes no orders and no run record, only its plan', async () => {
    const withoutPlans = async () =>
      (await api.snapshot()).filter((item) => !String((item as { pk: string }).pk).startsWith('PLAN#'));
    const before = await withoutPlans();
    const res = await api.call('POST', '/v1/balance', { body: { dryRun: true } });
    expect(res.status).toBe(200);
    const run = await res.json();
    expect(run.dryRun).toBe(true);
    expect(run.before.cv).toBeGreaterThan(0);
    expect(run.plan).toMatchObject({ run: run.id, status: 'open' });
    expect(await withoutPlans()).toEqual(before);
    expect((await (await api.call('GET', '/v1/runs')).json()).items).toEqual([]);
  });

  it('runs a real round, lists it under /v1/runs and shows it as the last run', async () => {
    const res = await api.call('POST', '/v1/balance');
    expect(res.status).toBe(200);
    const run = await res.json();
    expect(run.dryRun).toBe(false);
    const runs = await (await api.call('GET', '/v1/runs?limit=5')).json();
    expect(runs.items.map((r: { id: string }) => r.id)).toEqual([run.id]);
    expect((await (await api.call('GET', '/v1/cluster')).json()).lastRun.id).toBe(run.id);
  });

  it('lists migration history newest first, optionally for one VM', async () => {
    const order = (id: string, at: number) => ({
      id,
      from: 'n1',
      to: 'n2',
      phase: 'IMAGE_READY' as const,
      deadline: at + 60_000,
      orderedAt: at,
      origin: 'api',
      stoppedAt: at + 100,
      bytes: { precopy: 1000, final: 200 },
    });
    await putMigration(
      api.clients,
      migrationRecord(order('mig-a', NOW), 'vm-1', {
        outcome: 'completed',
        endedAt: NOW + 150,
        by: 'n2',
        runningAt: NOW + 150,
      }),
    );
    await putMigration(
      api.clients,
      migrationRecord(order('mig-b', NOW + 1000), 'vm-2', {
        outcome: 'aborted',
        endedAt: NOW + 1200,
        by: 'n1',
      }),
    );
    const all = await (await api.call('GET', '/v1/migrations')).json();
    expect(all.items.map((m: { id: string }) => m.id)).toEqual(['mig-b', 'mig-a']);
    expect(all.items[1]).toMatchObject({ downtimeMs: 50, bytes: { precopy: 1000, final: 200 } });
    const one = await (await api.call('GET', '/v1/migrations?vm=vm-1')).json();
    expect(one.items.map((m: { id: string }) => m.id)).toEqual(['mig-a']);
  });

  it('registers a guest module as application/wasm, lists it, and launches a VM from it', async () => {
    const bytes = await guestBinary('idle');
    const res = await api.call('POST', '/v1/modules?name=my-idle', {
      raw: new Uint8Array(bytes),
      headers: { 'content-type': 'application/wasm' },
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ name: 'my-idle', bytes: bytes.byteLength });
    const list = await (await api.call('GET', '/v1/modules')).json();
    expect(list.items.map((m: { name: string }) => m.name)).toEqual(['my-idle']);
    const vm = await api.call('POST', '/v1/vms', { body: { guest: 'module:my-idle', node: 'n2' } });
    expect(vm.status).toBe(201);
  });

  it('accepts the same module again as JSON base64 (200), but not other bytes under its name (409)', async () => {
    const bytes = await guestBinary('idle');
    const same = await api.call('POST', '/v1/modules', {
      body: { name: 'my-idle', wasm: Buffer.from(bytes).toString('base64') },
    });
    expect(same.status).toBe(200);
    const other = await guestBinary('cpu');
    const clash = await api.call('POST', '/v1/modules', {
      body: { name: 'my-idle', wasm: Buffer.from(other).toString('base64') },
    });
    expect(clash.status).toBe(409);
  });

  it('rejects a module that breaks the guest ABI with 422 listing its problems', async () => {
    // A valid wasm module with no exports at all.
    const empty = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const res = await api.call('POST', '/v1/modules?name=empty', {
      raw: empty,
      headers: { 'content-type': 'application/wasm' },
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    const problem = await res.json();
    expect(problem.errors.length).toBeGreaterThan(0);
    expect(problem.errors.map((e: { message: string }) => e.message).join('\n')).toMatch(/memory/);
    expect((await (await api.call('GET', '/v1/modules')).json()).items).toHaveLength(1);
  });

  it('publishes every route in /openapi.json, generated from the request schemas', async () => {
    const doc = await (await api.call('GET', '/openapi.json', { auth: false })).json();
    const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toEqual(
      [
        'POST /v1/vms',
        'GET /v1/vms',
        'GET /v1/vms/{id}',
        'PATCH /v1/vms/{id}',
        'DELETE /v1/vms/{id}',
        'POST /v1/vms/{id}/suspend',
        'POST /v1/vms/{id}/resume',
        'POST /v1/vms/{id}/migrate',
        'POST /v1/vms/{id}/restart',
        'POST /v1/modules',
        'GET /v1/modules',
        'POST /v1/images',
        'GET /v1/images',
        'GET /v1/images/{name}',
        'DELETE /v1/images/{name}',
        'GET /v1/nodes',
        'GET /v1/nodes/{id}',
        'PATCH /v1/nodes/{id}',
        'GET /v1/config/balancing',
        'PUT /v1/config/balancing',
        'POST /v1/balance',
        'GET /v1/plans',
        'GET /v1/plans/{id}',
        'POST /v1/plans/{id}/apply',
        'GET /v1/runs',
        'GET /v1/migrations',
        'GET /v1/cluster',
        'GET /healthz',
      ].sort(),
    );
    const create = doc.paths['/v1/vms'].post.requestBody.content['application/json'].schema;
    const schema = create.$ref ? doc.components.schemas[create.$ref.split('/').pop()] : create;
    expect(schema.properties.memPages).toMatchObject({ type: 'integer', minimum: 1, maximum: 65536 });
    expect(schema.additionalProperties).toBe(false);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('answers unknown paths with a 404 problem', async () => {
    const res = await api.call('GET', '/nowhere', { auth: false });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
  });
});
