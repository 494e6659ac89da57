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

/** Requests the caller got wrong; each must be a 4xx problem that changes nothing. */
const MALFORMED: {
  name: string;
  method: string;
  path: string;
  raw?: string;
  body?: unknown;
  type?: string;
  status: number;
}[] = [
  { name: 'bad JSON', method: 'POST', path: '/v1/vms', raw: '{"guest": "cpu"', status: 400 },
  { name: 'a JSON array', method: 'POST', path: '/v1/vms', body: ['cpu'], status: 400 },
  { name: 'no body', method: 'POST', path: '/v1/vms', raw: '', status: 400 },
  { name: 'unknown field', method: 'POST', path: '/v1/vms', body: { guest: 'cpu', cores: 4 }, status: 400 },
  { name: 'unknown guest kind', method: 'POST', path: '/v1/vms', body: { guest: 'doom' }, status: 400 },
  {
    name: 'negative target load',
    method: 'POST',
    path: '/v1/vms',
    body: { guest: 'cpu', targetLoad: -1 },
    status: 400,
  },
  {
    name: 'too many pages',
    method: 'POST',
    path: '/v1/vms',
    body: { guest: 'cpu', memPages: 70000 },
    status: 400,
  },
  {
    name: 'fractional pages',
    method: 'POST',
    path: '/v1/vms',
    body: { guest: 'cpu', memPages: 1.5 },
    status: 400,
  },
  {
    name: 'string number',
    method: 'POST',
    path: '/v1/vms',
    body: { guest: 'cpu', targetLoad: '3' },
    status: 400,
  },
  {
    name: 'wrong media type',
    method: 'POST',
    path: '/v1/vms',
    raw: 'guest=cpu',
    type: 'text/plain',
    status: 415,
  },
  { name: 'limit out of range', method: 'GET', path: '/v1/vms?limit=0', status: 400 },
  { name: 'limit not a number', method: 'GET', path: '/v1/vms?limit=ten', status: 400 },
  { name: 'unknown query parameter', method: 'GET', path: '/v1/vms?owner=n1', status: 400 },
  { name: 'unknown state filter', method: 'GET', path: '/v1/vms?state=ASLEEP', status: 400 },
  { name: 'unknown VM', method: 'GET', path: '/v1/vms/nope', status: 404 },
  {
    name: 'patch unknown field',
    method: 'PATCH',
    path: '/v1/vms/vm-run',
    body: { owner: 'n2' },
    status: 400,
  },
  {
    name: 'patch huge target load',
    method: 'PATCH',
    path: '/v1/vms/vm-run',
    body: { targetLoad: 1e12 },
    status: 400,
  },
  { name: 'patch unknown VM', method: 'PATCH', path: '/v1/vms/nope', body: { pinned: true }, status: 404 },
  {
    name: 'suspend with a body field',
    method: 'POST',
    path: '/v1/vms/vm-run/suspend',
    body: { now: true },
    status: 400,
  },
  { name: 'suspend a suspended VM', method: 'POST', path: '/v1/vms/vm-susp/suspend', status: 409 },
  { name: 'resume a running VM', method: 'POST', path: '/v1/vms/vm-run/resume', status: 409 },
  { name: 'migrate without a target', method: 'POST', path: '/v1/vms/vm-run/migrate', body: {}, status: 400 },
  {
    name: 'migrate to an unknown node',
    method: 'POST',
    path: '/v1/vms/vm-run/migrate',
    body: { to: 'n9' },
    status: 404,
  },
  {
    name: 'migrate to the owner',
    method: 'POST',
    path: '/v1/vms/vm-run/migrate',
    body: { to: 'n1' },
    status: 422,
  },
  {
    name: 'migrate a suspended VM',
    method: 'POST',
    path: '/v1/vms/vm-susp/migrate',
    body: { to: 'n2' },
    status: 409,
  },
  { name: 'delete a VM mid-suspend', method: 'DELETE', path: '/v1/vms/vm-suspending', status: 409 },
  { name: 'delete an unknown VM', method: 'DELETE', path: '/v1/vms/nope', status: 404 },
  { name: 'empty node patch', method: 'PATCH', path: '/v1/nodes/n1', body: {}, status: 400 },
  {
    name: 'negative weight',
    method: 'PATCH',
    path: '/v1/nodes/n1',
    body: { weights: { cpu: -1 } },
    status: 400,
  },
  { name: 'zero hint', method: 'PATCH', path: '/v1/nodes/n1', body: { hints: { cpu: 0 } }, status: 400 },
  {
    name: 'unknown weight',
    method: 'PATCH',
    path: '/v1/nodes/n1',
    body: { weights: { gpu: 1 } },
    status: 400,
  },
  {
    name: 'draining as a string',
    method: 'PATCH',
    path: '/v1/nodes/n1',
    body: { draining: 'yes' },
    status: 400,
  },
  {
    name: 'patch unknown node',
    method: 'PATCH',
    path: '/v1/nodes/n9',
    body: { draining: true },
    status: 404,
  },
  { name: 'unknown node', method: 'GET', path: '/v1/nodes/n9', status: 404 },
  {
    name: 'config threshold below 1',
    method: 'PUT',
    path: '/v1/config/balancing',
    body: { thresholdFactor: 0.5 },
    status: 400,
  },
  {
    name: 'config unknown field',
    method: 'PUT',
    path: '/v1/config/balancing',
    body: { speed: 'fast' },
    status: 400,
  },
  {
    name: 'config unknown pairing',
    method: 'PUT',
    path: '/v1/config/balancing',
    body: { pairing: 'psychic' },
    status: 400,
  },
  {
    name: 'balance with a bad flag',
    method: 'POST',
    path: '/v1/balance',
    body: { dryRun: 'yes' },
    status: 400,
  },
  { name: 'runs limit too big', method: 'GET', path: '/v1/runs?limit=5000', status: 400 },
  { name: 'migrations bad cursor', method: 'GET', path: '/v1/migrations?cursor=%%%', status: 400 },
  {
    name: 'module that is not wasm',
    method: 'POST',
    path: '/v1/modules',
    body: { name: 'm1', wasm: 'aGVsbG8=' },
    status: 422,
  },
  {
    name: 'module with a bad name',
    method: 'POST',
    path: '/v1/modules',
    body: { name: '../x', wasm: 'AGFzbQ==' },
    status: 400,
  },
  {
    name: 'module not base64',
    method: 'POST',
    path: '/v1/modules',
    body: { name: 'm1', wasm: '***' },
    status: 400,
  },
  { name: 'unknown route', method: 'GET', path: '/v1/galaxies', status: 404 },
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
