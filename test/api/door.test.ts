// Validation at the door: a launch whose params the guest does not declare or whose values are
// out of range, a module whose resource declarations no VM can have, and a forged pagination
// cursor are 4xx problems that change nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor } from '../../shared/storage/table.ts';
import { wasmOf } from '../support/hostile.ts';
import { aNode, anApi, aVm, PROBLEM, type TestApi } from './support.ts';

/** A minimal guest module with the given memory limits and extra globals. */
const guest = (memory: string, globals = '') => `(module
  (memory (export "memory") ${memory})
  ${globals}
  (func (export "run") (param i32) (result i32) (i32.const 0))
  (func (export "digest") (result i64) (i64.const 1)))`;

describe('validation at the door', () => {
  let api: TestApi;
  const upload = async (name: string, source: string) =>
    api.call('POST', `/v1/modules?name=${name}`, {
      raw: new Uint8Array(await wasmOf(source)) as unknown as BodyInit,
      headers: { 'content-type': 'application/wasm' },
    });

  /** The request is a problem with `status`, and the table is exactly as it was. */
  async function rejected(method: string, path: string, body: unknown, status: number) {
    const before = await api.snapshot();
    const res = await api.call(method, path, body === undefined ? {} : { body });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    const problem = await res.json();
    expect(await api.snapshot()).toEqual(before);
    return problem as { detail: string; errors?: { path: string; message: string }[] };
  }

  beforeAll(async () => {
    api = await anApi();
    await aNode(api.clients, 'n1');
    for (let i = 0; i < 5; i += 1) await aVm(api.clients, `vm-${i}`, 'n1');
    expect(
      (await upload('typed', guest('2 64', '(global (export "param_count") (mut i32) (i32.const 0))')))
        .status,
    ).toBe(201);
    expect((await upload('big', guest('40'))).status).toBe(201);
  });

  it('refuses a param the built-in guest does not declare, naming the ones it takes', async () => {
    const problem = await rejected('POST', '/v1/vms', { guest: 'cpu', params: { speed: 3 } }, 422);
    expect(problem.detail).toMatch(/does not declare param "speed"/);
    expect(problem.detail).toMatch(/rate/);
    expect(problem.errors?.[0]?.path).toBe('params.speed');
  });

  it('refuses built-in param values outside their range or type, one error per param', async () => {
    const problem = await rejected(
      'POST',
      '/v1/vms',
      { guest: 'io', params: { rate: -1, opBytes: 1000.5, diskMiB: 5000 } },
      422,
    );
    expect(problem.errors?.map((e) => e.path).sort()).toEqual([
      'params.diskMiB',
      'params.opBytes',
      'params.rate',
    ]);
    expect(problem.errors?.find((e) => e.path === 'params.opBytes')?.message).toMatch(/integer/);
  });

  it('refuses a kernel param out of range for any guest', async () => {
    await rejected('POST', '/v1/vms', { guest: 'idle', params: { diskMiB: 4096 } }, 422);
    await rejected('POST', '/v1/vms', { guest: 'idle', params: { diskMiB: 0 } }, 422);
  });

  it('checks a module param against its wasm type: an i32 takes no 2^40 and no fraction', async () => {
    const big = await rejected('POST', '/v1/vms', { guest: 'module:typed', params: { count: 2 ** 40 } }, 422);
    expect(big.detail).toMatch(/param "count" must be in \[-2147483648, 2147483647\]/);
    await rejected('POST', '/v1/vms', { guest: 'module:typed', params: { count: 1.5 } }, 422);
    await rejected('POST', '/v1/vms', { guest: 'module:typed', params: { other: 1 } }, 422);
  });

  it('launches with declared params in range', async () => {
    const res = await api.call('POST', '/v1/vms', {
      body: { guest: 'module:typed', params: { count: 7, diskMiB: 4 } },
    });
    expect(res.status).toBe(201);
    const res2 = await api.call('POST', '/v1/vms', {
      body: { guest: 'io', params: { rate: 10, opBytes: 4096 } },
    });
    expect(res2.status).toBe(201);
  });

  it("refuses memPages outside the module's declared memory, and defaults to its minimum", async () => {
    const low = await rejected('POST', '/v1/vms', { guest: 'module:big', memPages: 8 }, 422);
    expect(low.detail).toMatch(/below the 40 pages/);
    const high = await rejected('POST', '/v1/vms', { guest: 'module:typed', memPages: 65 }, 422);
    expect(high.detail).toMatch(/above the module's declared maximum of 64/);
    const res = await api.call('POST', '/v1/vms', { body: { guest: 'module:big' } });
    expect(res.status).toBe(201);
    expect((await res.json()).memPages).toBe(40);
  });

  it('refuses at registration a module whose resource declarations no VM can have', async () => {
    const count = (await (await api.call('GET', '/v1/modules')).json()).items.length;
    const zero = await upload('zero', guest('0 0'));
    expect(zero.status).toBe(422);
    expect((await zero.json()).detail).toMatch(/maximum of 0 pages/);
    const badName = await upload(
      'bad-name',
      guest('1', '(global (export "param_no-dash") (mut i32) (i32.const 0))'),
    );
    expect(badName.status).toBe(422);
    expect((await badName.json()).detail).toMatch(/param "no-dash"/);
    const many = Array.from(
      { length: 65 },
      (_, i) => `(global (export "param_p${i}") (mut f64) (f64.const 0))`,
    ).join('\n');
    const tooMany = await upload('many', guest('1', many));
    expect(tooMany.status).toBe(422);
    expect((await tooMany.json()).detail).toMatch(/65 params; at most 64/);
    expect((await (await api.call('GET', '/v1/modules')).json()).items).toHaveLength(count);
  });

  const forged = [
    ['not base64 JSON', 'not-a-cursor'],
    ['a JSON array', encodeCursor({ 0: 1 })!.replace(/.*/, Buffer.from('[1,2]').toString('base64url'))],
    ['an unknown key attribute', encodeCursor({ owner: 'n1' })!],
    ['a typed (non-string) key value', encodeCursor({ pk: { S: 'VM#vm-1' }, sk: 'VM' })!],
    ['a key that does not fit the index', encodeCursor({ pk: 'VM#vm-1', sk: 'VM' })!],
    ['an empty object', encodeCursor({})!.replace(/.*/, Buffer.from('{}').toString('base64url'))],
  ] as const;

  for (const [what, cursor] of forged)
    it(`answers a forged cursor (${what}) with 400 on every paginated list, never 500`, async () => {
      for (const path of ['/v1/vms', '/v1/migrations', '/v1/runs']) {
        const res = await api.call('GET', `${path}?limit=2&cursor=${encodeURIComponent(cursor)}`);
        expect(res.status, `${path} with ${what}`).toBe(400);
        expect(res.headers.get('content-type')).toBe(PROBLEM);
      }
    });

  it('still follows a real cursor to the next page', async () => {
    const first = await (await api.call('GET', '/v1/vms?limit=2')).json();
    expect(first.next).toBeTruthy();
    const second = await api.call('GET', `/v1/vms?limit=2&cursor=${first.next}`);
    expect(second.status).toBe(200);
    expect((await second.json()).items.length).toBeGreaterThan(0);
  });
});
