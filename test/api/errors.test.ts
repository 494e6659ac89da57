import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { idempotencyKey } from '../../shared/storage/keys.ts';
import { putItem } from '../../shared/storage/table.ts';
import { aNode, anApi, aVm, NOW, PROBLEM, type TestApi, TOKEN } from './support.ts';

/** Every /v1 route, as a method and a concrete path. */
const V1_ROUTES: [string, string][] = [
  ['POST', '/v1/vms'],
  ['GET', '/v1/vms'],
  ['GET', '/v1/vms/vm-run'],
  ['PATCH', '/v1/vms/vm-run'],
  ['DELETE', '/v1/vms/vm-run'],
  ['POST', '/v1/vms/vm-run/suspend'],
  ['POST', '/v1/vms/vm-run/resume'],
  ['POST', '/v1/vms/vm-run/migrate'],
  ['POST', '/v1/modules'],
  ['GET', '/v1/modules'],
  ['GET', '/v1/nodes'],
  ['GET', '/v1/nodes/n1'],
  ['PATCH', '/v1/nodes/n1'],
  ['GET', '/v1/config/balancing'],
  ['PUT', '/v1/config/balancing'],
  ['POST', '/v1/balance'],
  ['GET', '/v1/runs'],
  ['GET', '/v1/migrations'],
  ['GET', '/v1/cluster'],
];

/** A request the caller got wrong: what it is, `METHOD /path`, the 4xx it must get, and what it sends. */
function bad(
  name: string,
  route: string,
  status: number,
  request: { body?: unknown; raw?: string; type?: string } = {},
) {
  const [method = '', path = ''] = route.split(' ');
  return { name, method, path, status, ...request };
}

/** Requests the caller got wrong; each must be a 4xx problem that changes nothing. */
const MALFORMED = [
  bad('bad JSON', 'POST /v1/vms', 400, { raw: '{"guest": "cpu"' }),
  bad('a JSON array', 'POST /v1/vms', 400, { body: ['cpu'] }),
  bad('no body', 'POST /v1/vms', 400, { raw: '' }),
  bad('unknown field', 'POST /v1/vms', 400, { body: { guest: 'cpu', cores: 4 } }),
  bad('unknown guest kind', 'POST /v1/vms', 400, { body: { guest: 'doom' } }),
  bad('negative target load', 'POST /v1/vms', 400, { body: { guest: 'cpu', targetLoad: -1 } }),
  bad('too many pages', 'POST /v1/vms', 400, { body: { guest: 'cpu', memPages: 70000 } }),
  bad('fractional pages', 'POST /v1/vms', 400, { body: { guest: 'cpu', memPages: 1.5 } }),
  bad('string number', 'POST /v1/vms', 400, { body: { guest: 'cpu', targetLoad: '3' } }),
  bad('wrong media type', 'POST /v1/vms', 415, { raw: 'guest=cpu', type: 'text/plain' }),
  bad('limit out of range', 'GET /v1/vms?limit=0', 400),
  bad('limit not a number', 'GET /v1/vms?limit=ten', 400),
  bad('unknown query parameter', 'GET /v1/vms?owner=n1', 400),
  bad('unknown state filter', 'GET /v1/vms?state=ASLEEP', 400),
  bad('unknown VM', 'GET /v1/vms/nope', 404),
  bad('patch unknown field', 'PATCH /v1/vms/vm-run', 400, { body: { owner: 'n2' } }),
  bad('patch huge target load', 'PATCH /v1/vms/vm-run', 400, { body: { targetLoad: 1e12 } }),
  bad('patch unknown VM', 'PATCH /v1/vms/nope', 404, { body: { pinned: true } }),
  bad('suspend with a body field', 'POST /v1/vms/vm-run/suspend', 400, { body: { now: true } }),
  bad('suspend a suspended VM', 'POST /v1/vms/vm-susp/suspend', 409),
  bad('resume a running VM', 'POST /v1/vms/vm-run/resume', 409),
  bad('migrate without a target', 'POST /v1/vms/vm-run/migrate', 400, { body: {} }),
  bad('migrate to an unknown node', 'POST /v1/vms/vm-run/migrate', 404, { body: { to: 'n9' } }),
  bad('migrate to the owner', 'POST /v1/vms/vm-run/migrate', 422, { body: { to: 'n1' } }),
  bad('migrate a suspended VM', 'POST /v1/vms/vm-susp/migrate', 409, { body: { to: 'n2' } }),
  bad('delete a VM mid-suspend', 'DELETE /v1/vms/vm-suspending', 409),
  bad('delete an unknown VM', 'DELETE /v1/vms/nope', 404),
  bad('empty node patch', 'PATCH /v1/nodes/n1', 400, { body: {} }),
  bad('negative weight', 'PATCH /v1/nodes/n1', 400, { body: { weights: { cpu: -1 } } }),
  bad('zero hint', 'PATCH /v1/nodes/n1', 400, { body: { hints: { cpu: 0 } } }),
  bad('unknown weight', 'PATCH /v1/nodes/n1', 400, { body: { weights: { gpu: 1 } } }),
  bad('draining as a string', 'PATCH /v1/nodes/n1', 400, { body: { draining: 'yes' } }),
  bad('patch unknown node', 'PATCH /v1/nodes/n9', 404, { body: { draining: true } }),
  bad('unknown node', 'GET /v1/nodes/n9', 404),
  bad('config threshold below 1', 'PUT /v1/config/balancing', 400, { body: { thresholdFactor: 0.5 } }),
  bad('config unknown field', 'PUT /v1/config/balancing', 400, { body: { speed: 'fast' } }),
  bad('config unknown pairing', 'PUT /v1/config/balancing', 400, { body: { pairing: 'psychic' } }),
  bad('balance with a bad flag', 'POST /v1/balance', 400, { body: { dryRun: 'yes' } }),
  bad('runs limit too big', 'GET /v1/runs?limit=5000', 400),
  bad('migrations bad cursor', 'GET /v1/migrations?cursor=%%%', 400),
  bad('module that is not wasm', 'POST /v1/modules', 422, { body: { name: 'm1', wasm: 'aGVsbG8=' } }),
  bad('module with a bad name', 'POST /v1/modules', 400, { body: { name: '../x', wasm: 'AGFzbQ==' } }),
  bad('module not base64', 'POST /v1/modules', 400, { body: { name: 'm1', wasm: '***' } }),
  bad('unknown route', 'GET /v1/galaxies', 404),
];

describe('auth and malformed requests', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await anApi();
    await aNode(api.clients, 'n1', { vms: { 'vm-run': 1 } });
    await aNode(api.clients, 'n2', { load: 0 });
    await aVm(api.clients, 'vm-run', 'n1');
    await aVm(api.clients, 'vm-susp', 'n1', 'SUSPENDED');
    const s = await aVm(api.clients, 'vm-suspending', 'n1');
    expect(s.state).toBe('RUNNING');
    expect((await api.call('POST', '/v1/vms/vm-suspending/suspend')).status).toBe(202);
  });

  it.each(V1_ROUTES)(
    '%s %s without a token is 401 with a Bearer challenge and changes nothing',
    async (method, path) => {
      const before = await api.snapshot();
      const res = await api.call(method, path, { auth: false, ...(method === 'GET' ? {} : { body: {} }) });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe(PROBLEM);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await res.json()).status).toBe(401);
      expect(await api.snapshot()).toEqual(before);
    },
  );

  it.each([
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['another scheme', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`],
    ['an empty bearer', 'Bearer '],
  ])('rejects %s with 401', async (_name, header) => {
    const res = await api.call('GET', '/v1/vms', { headers: { authorization: header } });
    expect(res.status).toBe(401);
    expect((await res.json()).detail).toMatch(/not valid/);
  });

  it('serves /healthz and /openapi.json without a token', async () => {
    expect((await api.call('GET', '/healthz', { auth: false })).status).toBe(200);
    expect((await api.call('GET', '/openapi.json', { auth: false })).status).toBe(200);
  });

  it.each(MALFORMED)(
    '$name → $status problem, nothing changed',
    async ({ method, path, raw, body, type, status }) => {
      const before = await api.snapshot();
      const headers: Record<string, string> = {};
      if (raw !== undefined) headers['content-type'] = type ?? 'application/json';
      const res = await api.call(method, path, {
        headers,
        ...(raw !== undefined ? { raw } : {}),
        ...(body !== undefined ? { body } : {}),
      });
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe(PROBLEM);
      const problem = await res.json();
      expect(problem).toMatchObject({ status, type: expect.stringMatching(/^urn:seesaw:problem:/) });
      expect(problem.detail.length).toBeGreaterThan(0);
      expect(await api.snapshot()).toEqual(before);
    },
  );

  it('names the offending field of a validation failure', async () => {
    const res = await api.call('POST', '/v1/vms', { body: { guest: 'cpu', memPages: 0 } });
    const problem = await res.json();
    expect(problem.errors).toEqual([expect.objectContaining({ path: 'memPages' })]);
    expect(problem.detail).toMatch(/memPages/);
  });
});

describe('Idempotency-Key', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await anApi();
    await aNode(api.clients, 'n1', { load: 0 });
  });

  const vmCount = async () =>
    (await api.snapshot()).filter((item) => String((item as { pk: string }).pk).startsWith('VM#')).length;

  it('replays the first response for a retry with the same key and body, creating one VM', async () => {
    const headers = { 'idempotency-key': 'create-1' };
    const first = await api.call('POST', '/v1/vms', { body: { guest: 'cpu' }, headers });
    expect(first.status).toBe(201);
    const retry = await api.call('POST', '/v1/vms', { body: { guest: 'cpu' }, headers });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(await first.json());
    expect(await vmCount()).toBe(1);
  });

  it('refuses the same key with a different body (422) and changes nothing', async () => {
    const before = await api.snapshot();
    const res = await api.call('POST', '/v1/vms', {
      body: { guest: 'idle' },
      headers: { 'idempotency-key': 'create-1' },
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    expect(await api.snapshot()).toEqual(before);
  });

  it('replays a problem answer too, and treats different keys as different requests', async () => {
    const bad = { body: { guest: 'idle', node: 'nowhere' }, headers: { 'idempotency-key': 'bad-1' } };
    expect((await api.call('POST', '/v1/vms', bad)).status).toBe(404);
    const again = await api.call('POST', '/v1/vms', bad);
    expect(again.status).toBe(404);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    await api.call('POST', '/v1/vms', { body: { guest: 'cpu' }, headers: { 'idempotency-key': 'create-2' } });
    expect(await vmCount()).toBe(2);
  });

  it('refuses a malformed key', async () => {
    const res = await api.call('POST', '/v1/vms', {
      body: { guest: 'cpu' },
      headers: { 'idempotency-key': 'a b' },
    });
    expect(res.status).toBe(400);
  });

  it('answers 409 while the first request with a key still runs, and takes over a claim abandoned long ago', async () => {
    const body = JSON.stringify({ guest: 'cpu' });
    const fingerprint = createHash('sha256').update('POST /v1/vms\n').update(body).digest('hex');
    const claim = (key: string, startedAt: number) =>
      putItem(api.clients, 'test', {
        Item: { ...idempotencyKey(key), fingerprint, startedAt, expiresAt: NOW / 1000 + 3600 },
      });
    await claim('running-1', NOW / 1000 - 5);
    const busy = await api.call('POST', '/v1/vms', {
      raw: body,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'running-1' },
    });
    expect(busy.status).toBe(409);
    expect((await busy.json()).detail).toMatch(/still in progress/);
    await claim('crashed-1', NOW / 1000 - 600);
    const retried = await api.call('POST', '/v1/vms', {
      raw: body,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'crashed-1' },
    });
    expect(retried.status).toBe(201);
  });
});
