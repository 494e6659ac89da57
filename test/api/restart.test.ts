import { beforeAll, describe, expect, it } from 'vitest';
import { afterFailure } from '../../shared/domain/restart.ts';
import { failVm, getVm } from '../../shared/storage/vms.ts';
import { BIG_MEMORY, wasmOf } from '../support/hostile.ts';
import { aNode, anApi, aVm, NOW, PROBLEM, type TestApi } from './support.ts';

describe('failed VMs through the API', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await anApi();
    await aNode(api.clients, 'home', { load: 3 });
    await aNode(api.clients, 'spare', { load: 0.1 });
    await aNode(api.clients, 'gone', { live: false });
  });

  async function aFailedVm(id: string, owner: string) {
    await aVm(api.clients, id, owner);
    return failVm(api.clients, {
      id,
      node: owner,
      fence: 1,
      reason: 'trap in digest: unreachable',
      next: afterFailure(undefined, 0, NOW),
      now: NOW,
    });
  }

  it('shows the failure reason, failures and restart policy in GET /v1/vms/{id} and the list', async () => {
    await aFailedVm('f-show', 'home');
    const vm = await (await api.call('GET', '/v1/vms/f-show')).json();
    expect(vm).toMatchObject({
      state: 'FAILED',
      reason: 'trap in digest: unreachable',
      failures: 1,
      restartPolicy: { kind: 'never' },
      retryAt: null,
    });
    const page = await (await api.call('GET', '/v1/vms?state=FAILED')).json();
    expect(page.items.map((v: { id: string; reason: string }) => [v.id, v.reason])).toContainEqual([
      'f-show',
      'trap in digest: unreachable',
    ]);
  });

  it('takes a restart policy at launch', async () => {
    const res = await api.call('POST', '/v1/vms', {
      body: { guest: 'cpu', restartPolicy: { kind: 'on-failure', maxRetries: 3 } },
    });
    expect(res.status).toBe(201);
    expect((await res.json()).restartPolicy).toEqual({ kind: 'on-failure', maxRetries: 3 });
    const bad = await api.call('POST', '/v1/vms', {
      body: { guest: 'cpu', restartPolicy: { kind: 'always' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe(PROBLEM);
  });

  it('restarts a FAILED VM on its own live node under a new fence, failures forgotten', async () => {
    await aFailedVm('f-home', 'home');
    const res = await api.call('POST', '/v1/vms/f-home/restart');
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({
      state: 'PENDING',
      owner: 'home',
      fence: 2,
      failures: 0,
      reason: null,
    });
  });

  it('restarts a FAILED VM of a dead node on a live node, or where asked', async () => {
    await aFailedVm('f-gone', 'gone');
    const moved = await (await api.call('POST', '/v1/vms/f-gone/restart')).json();
    expect(moved.state).toBe('PENDING');
    expect(['home', 'spare']).toContain(moved.owner);
    await aFailedVm('f-asked', 'spare');
    const asked = await api.call('POST', '/v1/vms/f-asked/restart', { body: { node: 'home' } });
    expect((await asked.json()).owner).toBe('home');
  });

  it('answers 409 problem+json for a VM that is not FAILED, and changes nothing', async () => {
    await aVm(api.clients, 'f-running', 'home');
    const before = await api.snapshot();
    const res = await api.call('POST', '/v1/vms/f-running/restart');
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    expect((await res.json()).detail).toMatch(/only a FAILED VM can be restarted/);
    expect(await api.snapshot()).toEqual(before);
    expect((await api.call('POST', '/v1/vms/nope/restart')).status).toBe(404);
  });

  it('refuses (422) a module VM whose memPages is below the initial memory the module declares', async () => {
    const up = await api.call('POST', '/v1/modules?name=big', {
      raw: new Uint8Array(await wasmOf(BIG_MEMORY)),
      headers: { 'content-type': 'application/wasm' },
    });
    expect(up.status).toBe(201);
    const before = await api.snapshot();
    const small = await api.call('POST', '/v1/vms', { body: { guest: 'module:big', memPages: 4 } });
    expect(small.status).toBe(422);
    expect(small.headers.get('content-type')).toBe(PROBLEM);
    expect((await small.json()).detail).toMatch(/below the 8 pages the module's memory starts with/);
    expect(await api.snapshot()).toEqual(before);
    expect((await api.call('POST', '/v1/vms', { body: { guest: 'module:big', memPages: 8 } })).status).toBe(
      201,
    );
  });

  it('deletes a FAILED VM at once', async () => {
    await aFailedVm('f-del', 'home');
    expect((await api.call('DELETE', '/v1/vms/f-del')).status).toBe(204);
    await expect(getVm(api.clients, 'f-del')).rejects.toThrow(/not found/);
  });
});
