import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { vmKey } from '../../shared/storage/keys.ts';
import { getNode, patchNode } from '../../shared/storage/nodes.ts';
import { findVm, getVm } from '../../shared/storage/vms.ts';
import { aNode, anApi, aVm, NOW, PROBLEM, type TestApi } from './support.ts';

describe('VM routes', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await anApi();
    await aNode(api.clients, 'busy', { vms: { 'vm-a': 2, 'vm-b': 1 } });
    await aNode(api.clients, 'quiet', { load: 0.5 });
    await aNode(api.clients, 'idle', { load: 0.1 });
    await aNode(api.clients, 'dead', { live: false });
    await aNode(api.clients, 'tiny', { load: 0, memCapacityPages: 8 });
    await aVm(api.clients, 'vm-a', 'busy');
    await aVm(api.clients, 'vm-b', 'busy');
  });

  it('launches a VM on the least-loaded live node with room and answers 201 with its Location', async () => {
    const res = await api.call('POST', '/v1/vms', {
      body: { guest: 'cpu', targetLoad: 0.4, group: 'web', params: { rate: 3 } },
    });
    expect(res.status).toBe(201);
    const vm = await res.json();
    expect(res.headers.get('location')).toBe(`/v1/vms/${vm.id}`);
    // `tiny` has less load but only 8 pages for a 16-page VM.
    expect(vm).toMatchObject({ owner: 'idle', state: 'PENDING', fence: 1, targetLoad: 0.4, group: 'web' });
    expect(vm.guest).toEqual({ kind: 'cpu', params: { rate: 3 } });
    expect((await getVm(api.clients, vm.id)).owner).toBe('idle');
  });

  it('launches on the node asked for, and refuses unknown (404), dead or full nodes (422)', async () => {
    const ok = await api.call('POST', '/v1/vms', { body: { guest: 'idle', node: 'busy', memPages: 4 } });
    expect(ok.status).toBe(201);
    expect((await ok.json()).owner).toBe('busy');
    expect((await api.call('POST', '/v1/vms', { body: { guest: 'idle', node: 'nope' } })).status).toBe(404);
    expect((await api.call('POST', '/v1/vms', { body: { guest: 'idle', node: 'dead' } })).status).toBe(422);
    expect((await api.call('POST', '/v1/vms', { body: { guest: 'idle', node: 'tiny' } })).status).toBe(422);
  });

  it('refuses a module guest that was never registered (404) and a series for a non-trace guest (422)', async () => {
    const res = await api.call('POST', '/v1/vms', { body: { guest: 'module:ghost' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    expect((await api.call('POST', '/v1/vms', { body: { guest: 'cpu', series: [10, 20] } })).status).toBe(
      422,
    );
  });

  it("shows a VM with the load, factors and digest of its owner's last report", async () => {
    const res = await api.call('GET', '/v1/vms/vm-a');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id: 'vm-a',
      owner: 'busy',
      state: 'RUNNING',
      load: 2,
      factors: { cpu: 2, io: 0, mem: 0 },
      digest: 'digest-vm-a',
      reportedAt: NOW,
      migration: null,
    });
    expect((await api.call('GET', '/v1/vms/missing')).status).toBe(404);
  });

  it('lists VMs filtered by node and state, a page at a time', async () => {
    const onBusy = await (await api.call('GET', '/v1/vms?node=busy&state=RUNNING')).json();
    expect(onBusy.items.map((v: { id: string }) => v.id).sort()).toEqual(['vm-a', 'vm-b']);
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Response = await api.call('GET', `/v1/vms?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = await res.json();
      expect(page.items.length).toBeLessThanOrEqual(2);
      ids.push(...page.items.map((v: { id: string }) => v.id));
      cursor = page.next;
      pages += 1;
    } while (cursor);
    expect(pages).toBeGreaterThan(1);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['vm-a', 'vm-b']));
    const bad = await api.call('GET', '/v1/vms?cursor=not-a-cursor');
    expect(bad.status).toBe(400);
  });

  it('changes target load, pinned and group, and clears them with null', async () => {
    const set = await api.call('PATCH', '/v1/vms/vm-b', {
      body: { targetLoad: 1.5, pinned: true, group: 'db' },
    });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ targetLoad: 1.5, pinned: true, group: 'db' });
    const cleared = await api.call('PATCH', '/v1/vms/vm-b', {
      body: { targetLoad: null, group: null, pinned: false },
    });
    expect(await cleared.json()).toMatchObject({ targetLoad: null, pinned: false, group: null });
    expect((await api.call('PATCH', '/v1/vms/nope', { body: { pinned: true } })).status).toBe(404);
  });

  it('orders a migration to a named node, with origin api and a deadline', async () => {
    await aVm(api.clients, 'vm-m1', 'busy');
    const res = await api.call('POST', '/v1/vms/vm-m1/migrate', { body: { to: 'quiet' } });
    expect(res.status).toBe(202);
    expect((await res.json()).migration).toMatchObject({
      from: 'busy',
      to: 'quiet',
      phase: 'ORDERED',
      origin: 'api',
    });
    expect((await getVm(api.clients, 'vm-m1')).migration?.deadline).toBe(NOW + 60_000);
    const again = await api.call('POST', '/v1/vms/vm-m1/migrate', { body: { to: 'idle' } });
    expect(again.status).toBe(409);
  });

  it("migrates to 'auto': the least-loaded live node other than the owner", async () => {
    await aVm(api.clients, 'vm-m2', 'idle');
    const res = await api.call('POST', '/v1/vms/vm-m2/migrate', { body: { to: 'auto' } });
    expect(res.status).toBe(202);
    // tiny (load 0) cannot hold 16 pages, idle is the owner, so quiet is next.
    expect((await res.json()).migration.to).toBe('quiet');
  });

  it('refuses migrations to unknown (404), the owner, dead or draining nodes (422), and of pinned or suspended VMs (409)', async () => {
    await aVm(api.clients, 'vm-m3', 'busy');
    await aVm(api.clients, 'vm-pinned', 'busy', 'RUNNING', { pinned: true });
    await aVm(api.clients, 'vm-susp', 'busy', 'SUSPENDED');
    await aNode(api.clients, 'draining', { load: 0 });
    await patchNode(api.clients, 'draining', { draining: true }, NOW);
    const migrate = (id: string, to: string) => api.call('POST', `/v1/vms/${id}/migrate`, { body: { to } });
    expect((await migrate('vm-m3', 'nowhere')).status).toBe(404);
    expect((await migrate('vm-m3', 'busy')).status).toBe(422);
    expect((await migrate('vm-m3', 'dead')).status).toBe(422);
    expect((await migrate('vm-m3', 'draining')).status).toBe(422);
    expect((await migrate('vm-pinned', 'quiet')).status).toBe(409);
    expect((await migrate('vm-susp', 'quiet')).status).toBe(409);
    expect((await getVm(api.clients, 'vm-m3')).migration).toBeUndefined();
  });

  it('suspends a running VM (202, SUSPENDING) and refuses to suspend it twice (409)', async () => {
    await aVm(api.clients, 'vm-s', 'busy');
    const res = await api.call('POST', '/v1/vms/vm-s/suspend');
    expect(res.status).toBe(202);
    expect((await res.json()).state).toBe('SUSPENDING');
    const twice = await api.call('POST', '/v1/vms/vm-s/suspend');
    expect(twice.status).toBe(409);
    expect(twice.headers.get('content-type')).toBe(PROBLEM);
  });

  it('resumes only a suspended VM, on the node asked for or the least-loaded one, under a new fence', async () => {
    await aVm(api.clients, 'vm-r1', 'busy', 'SUSPENDED');
    await aVm(api.clients, 'vm-r2', 'busy', 'SUSPENDED');
    const there = await api.call('POST', '/v1/vms/vm-r1/resume', { body: { node: 'quiet' } });
    expect(there.status).toBe(202);
    expect(await there.json()).toMatchObject({ owner: 'quiet', state: 'PENDING', fence: 2 });
    const anywhere = await api.call('POST', '/v1/vms/vm-r2/resume');
    expect(await anywhere.json()).toMatchObject({ owner: 'idle', state: 'PENDING' });
    expect((await api.call('POST', '/v1/vms/vm-a/resume')).status).toBe(409);
    await aVm(api.clients, 'vm-r3', 'busy', 'SUSPENDED');
    expect((await api.call('POST', '/v1/vms/vm-r3/resume', { body: { node: 'dead' } })).status).toBe(422);
    expect((await api.call('POST', '/v1/vms/vm-r3/resume', { body: { node: 'zzz' } })).status).toBe(404);
  });

  it('deletes a running VM by asking its owner (202 DELETING) and a suspended one at once (204)', async () => {
    await aVm(api.clients, 'vm-d1', 'busy');
    await aVm(api.clients, 'vm-d2', 'busy', 'SUSPENDED');
    const running = await api.call('DELETE', '/v1/vms/vm-d1');
    expect(running.status).toBe(202);
    expect((await running.json()).state).toBe('DELETING');
    expect((await api.call('DELETE', '/v1/vms/vm-d1')).status).toBe(202);
    const suspended = await api.call('DELETE', '/v1/vms/vm-d2');
    expect(suspended.status).toBe(204);
    expect(await findVm(api.clients, 'vm-d2')).toBeUndefined();
    expect((await api.call('DELETE', '/v1/vms/vm-d2')).status).toBe(404);
  });

  it('answers 409 and changes nothing when the VM moves between the read and the fenced write', async () => {
    const racing = await anApi();
    await aNode(racing.clients, 'n1', { load: 1 });
    await aNode(racing.clients, 'n2', { load: 0 });
    await aVm(racing.clients, 'vm-x', 'n1');
    // Another writer bumps the fence right after the handler reads the item.
    const send = racing.clients.doc.send.bind(racing.clients.doc);
    let raced = false;
    racing.clients.doc.send = (async (command: {
      constructor: { name: string };
      input: { Key?: unknown };
    }) => {
      const out = await send(command as never);
      if (
        !raced &&
        command.constructor.name === 'GetCommand' &&
        JSON.stringify(command.input.Key).includes('VM#vm-x')
      ) {
        raced = true;
        await send(
          new UpdateCommand({
            TableName: racing.clients.tableName,
            Key: vmKey('vm-x'),
            UpdateExpression: 'SET fence = fence + :one',
            ExpressionAttributeValues: { ':one': 1 },
          }),
        );
      }
      return out;
    }) as typeof racing.clients.doc.send;
    const before = await racing.snapshot();
    const res = await racing.call('POST', '/v1/vms/vm-x/migrate', { body: { to: 'n2' } });
    expect(res.status).toBe(409);
    expect((await res.json()).detail).toMatch(/changed while the request ran/);
    const after = await racing.snapshot();
    // Only the racing writer's fence bump differs.
    const vmBefore = before.find((i) => (i as { pk: string }).pk === 'VM#vm-x') as Record<string, unknown>;
    const vmAfter = after.find((i) => (i as { pk: string }).pk === 'VM#vm-x') as Record<string, unknown>;
    expect({ ...vmAfter, fence: vmBefore.fence }).toEqual(vmBefore);
    expect(vmAfter.fence).toBe(2);
    expect(await getNode(racing.clients, 'n2')).toBeDefined();
  });
});
