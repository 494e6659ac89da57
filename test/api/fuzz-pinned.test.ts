// The counterexamples test/api/fuzz.test.ts found, each pinned as one small request so breaking its
// fix fails every run, whatever the fuzz's seed and run count: the status it must get, and the laws
// the fuzz checks (no 5xx, a problem+json whose status is the HTTP status, the stores unchanged).
import { beforeAll, describe, expect, it } from 'vitest';
import { guestSource } from '../../node-agent/guests/index.ts';
import { wasmOf } from '../support/hostile.ts';
import { aWitness, type Hostile } from './fuzz-witness.ts';
import { aNode, anApi, aVm, type TestApi, TOKEN } from './support.ts';

const json = (method: string, path: string, body: string): Hostile => ({
  method,
  path,
  headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  body,
});

/** Found by the fuzz: the request, and the status it must now get. */
const FOUND: { name: string; request: Hostile; status: number }[] = [
  {
    name: 'a config number below what DynamoDB stores (5e-324) is a 400, not a 500 from the write',
    request: json('PUT', '/v1/config/balancing', '{"highThreshold":5e-324}'),
    status: 400,
  },
  {
    name: 'a config number above what DynamoDB stores (1e300) is a 400',
    request: json('PUT', '/v1/config/balancing', '{"margin":1e300}'),
    status: 400,
  },
  {
    name: 'a VM param above what DynamoDB stores is a 400',
    request: json('POST', '/v1/vms', '{"guest":"cpu","params":{"n":1e200}}'),
    status: 400,
  },
  {
    name: 'a cooldown above 2^53 - 1, which the SDK refuses to write, is a 400',
    request: json('PUT', '/v1/config/balancing', '{"cooldownMs":9007199254740993}'),
    status: 400,
  },
  {
    name: 'a target load below what DynamoDB stores is a 400',
    request: json('PATCH', '/v1/vms/vm-run', '{"targetLoad":1e-200}'),
    status: 400,
  },
  {
    name: 'a dashboard file that does not exist is a 404 problem, not a text/plain one',
    request: { method: 'GET', path: '/dashboard/$', headers: {} },
    status: 404,
  },
];

describe('counterexamples the fuzz found', () => {
  let api: TestApi;
  let witness: ReturnType<typeof aWitness>;
  beforeAll(async () => {
    const logged: unknown[] = [];
    api = await anApi({ logError: (error) => logged.push(error) });
    await aNode(api.clients, 'n1', { vms: { 'vm-run': 0.5 } });
    await aVm(api.clients, 'vm-run', 'n1');
    witness = aWitness(api, logged);
    await witness.start();
  });

  for (const { name, request, status } of FOUND) {
    it(name, async () => {
      expect((await witness.exchange(request)).status).toBe(status);
    });
  }

  it('still stores the smallest and largest numbers DynamoDB takes', async () => {
    const res = await api.call('PUT', '/v1/config/balancing', {
      body: { margin: Number.MAX_SAFE_INTEGER, cooldownMs: 0 },
    });
    expect(res.status).toBe(200);
    const small = await api.call('PATCH', '/v1/vms/vm-run', { body: { targetLoad: 1e-130 } });
    expect(small.status).toBe(200);
    await witness.start();
  });

  it('a series too long for the VM item (100,000 steps) is a 400, not a 500 from the write', async () => {
    const series = Array.from({ length: 100_000 }, (_, i) => (i * 7.123456789) % 100);
    const request = json('POST', '/v1/vms', JSON.stringify({ guest: 'trace', series }));
    expect((await witness.exchange(request)).status).toBe(400);
  });

  it('the longest series, at 17 digits a step, fits the VM item and its Idempotency-Key record', async () => {
    const series = Array.from({ length: 10_000 }, (_, i) => 10 + ((i * Math.PI) % 1));
    const body = JSON.stringify({ guest: 'trace', node: 'n1', series });
    const request = json('POST', '/v1/vms', body);
    request.headers['idempotency-key'] = 'longest-series';
    expect((await witness.exchange(request)).status).toBe(201);
    const again = await api.app.request(request.path, { ...request, body });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  /** The idle guest with `extra` WAT fields added to its module. */
  const idleWith = async (extra: string) => wasmOf(guestSource('idle').replace(/\)\s*$/, `${extra})`));
  const upload = (name: string, bytes: Uint8Array): Hostile => ({
    method: 'POST',
    path: `/v1/modules?name=${name}`,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/wasm' },
    body: bytes,
  });

  it('a module with more exports than its item can list (8,000) is a 422, not a 500 from the write', async () => {
    const many = Array.from({ length: 8000 }, (_, i) => `(export "${'e'.repeat(60)}${i}" (func 0))`).join('');
    const res = await witness.exchange(upload('many', await idleWith(many)));
    expect(res.status).toBe(422);
    expect(String(res.problem?.detail)).toMatch(/at most 1024/);
  });

  it('a module with a 500 KB export name is a 422', async () => {
    const res = await witness.exchange(
      upload('long', await idleWith(`(export "${'n'.repeat(500_000)}" (func 0))`)),
    );
    expect(res.status).toBe(422);
    expect(String(res.problem?.detail)).toMatch(/over 128 bytes/);
  });

  it('a module with 1,024 exports of 128-byte names is registered', async () => {
    const names = Array.from(
      { length: 1020 },
      (_, i) => `(export "${String(i).padStart(128, 'e')}" (func 0))`,
    );
    const res = await witness.exchange(upload('full', await idleWith(names.join(''))));
    expect(res.status).toBe(201);
    await witness.start();
  });
});
