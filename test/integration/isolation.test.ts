// Hostile and broken guests against real agents and kernels on a virtual clock, with dynalite and
// s3rver: each hostile VM ends FAILED with its reason while a normal VM on the same node keeps
// running and the node keeps its lease; restart policies; restores that fall back past broken images.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { runReaper } from '../../functions/reaper/reaper.ts';
import { isLive } from '../../shared/domain/placement.ts';
import { BASE_BACKOFF_MS } from '../../shared/domain/restart.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore, type ImageStore } from '../../shared/storage/image-store.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { createVm, getVm, restartVm } from '../../shared/storage/vms.ts';
import { AGENT_LEASE_MS, agentRig, quiet } from '../support/agents.ts';
import { FILL_DISK, GROW_RUN, SPIN_INIT, SPIN_RUN, TRAP_DIGEST, wasmOf } from '../support/hostile.ts';
import { freshStores } from '../support/stores.ts';

const OK_GUEST = { kind: 'memory', params: { wsPages: 2, rate: 10_000 } };

describe('hostile and broken guests on a node agent', () => {
  let clients: Clients;
  let images: ImageStore;
  let now = 1_000_000;
  const clock = () => now;
  const rig = agentRig({
    clients: () => clients,
    images: () => images,
    clock,
    advance: (ms) => {
      now += ms;
    },
  });
  const { cycle } = rig;
  const anAgent = (id: string) => rig.anAgent(id, { kernel: { guestBudgetMs: 200, memCapacityPages: 1024 } });

  beforeAll(async () => {
    clients = await freshStores();
    images = createImageStore(clients);
    for (const [name, source] of Object.entries({
      spin: SPIN_RUN,
      trap: TRAP_DIGEST,
      grow: GROW_RUN,
      init: SPIN_INIT,
      fill: FILL_DISK,
    }))
      await images.putModule(name, await wasmOf(source));
  });

  it('fails each hostile VM with its reason while a normal VM keeps running and the lease stays live', async () => {
    const a = anAgent('h1');
    await a.register();
    await createVm(clients, { id: 'ok', owner: 'h1', guest: OK_GUEST, memPages: 4 }, now);
    await createVm(clients, { id: 'spin', owner: 'h1', guest: { kind: 'module:spin' }, memPages: 2 }, now);
    await createVm(clients, { id: 'trap', owner: 'h1', guest: { kind: 'module:trap' }, memPages: 2 }, now);
    await createVm(clients, { id: 'grow', owner: 'h1', guest: { kind: 'module:grow' }, memPages: 2 }, now);
    await createVm(clients, { id: 'init', owner: 'h1', guest: { kind: 'module:init' }, memPages: 2 }, now);
    // Several lease periods: the lease must be renewed throughout.
    const liveAt: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      await cycle([a], 10);
      liveAt.push(isLive(await getNode(clients, 'h1'), now));
    }
    expect(liveAt).toEqual([true, true, true, true]);
    expect(a.status()).toBe('ready');
    const state = async (id: string) => {
      const vm = await getVm(clients, id);
      return [vm.state, vm.reason];
    };
    expect(await state('spin')).toEqual(['FAILED', expect.stringMatching(/^timeout in run after \d+ ms$/)]);
    expect(await state('trap')).toEqual(['FAILED', 'trap in digest: unreachable']);
    expect(await state('grow')).toEqual(['FAILED', 'memory limit of 2 pages exceeded']);
    expect(await state('init')).toEqual(['FAILED', expect.stringMatching(/^timeout in init after \d+ ms$/)]);
    expect(await state('ok')).toEqual(['RUNNING', undefined]);
    expect(a.kernel.running()).toEqual(['ok']);
    const before = a.kernel.digest('ok');
    await cycle([a], 3);
    expect(a.kernel.digest('ok')).not.toBe(before);
    expect((await getNode(clients, 'h1')).report?.vms.ok?.load).toBeGreaterThan(0);
  });

  it('reports disk blocks with memory pages, so placement and the balancer count them against the node', async () => {
    const a = anAgent('h8');
    await a.register();
    await createVm(clients, { id: 'disk', owner: 'h8', guest: { kind: 'module:fill' }, memPages: 2 }, now);
    await cycle([a], 5);
    const line = (await getNode(clients, 'h8')).report?.vms.disk;
    expect(a.kernel.measure().find((m) => m.id === 'disk')?.diskBlocks).toBeGreaterThan(0);
    expect(line?.memPages).toBeGreaterThan(2);
  });

  it('never lets the reaper move a FAILED VM, even when its node dies; it moves the others', async () => {
    const b = anAgent('h2');
    const c = anAgent('h3');
    await b.register();
    await c.register();
    await createVm(clients, { id: 'ok2', owner: 'h2', guest: OK_GUEST, memPages: 4 }, now);
    await createVm(clients, { id: 'trap2', owner: 'h2', guest: { kind: 'module:trap' }, memPages: 2 }, now);
    await cycle([b, c], 5);
    expect((await getVm(clients, 'trap2')).state).toBe('FAILED');
    b.crash();
    await cycle([c], 12);
    const report = await runReaper(
      { clients, clock, log: quiet },
      { graceMs: 100, shard: (id) => id === 'h2' || id === 'h3' },
    );
    expect(report.restarted.map((r) => r.vm)).toEqual(['ok2']);
    expect(await getVm(clients, 'trap2')).toMatchObject({ state: 'FAILED', owner: 'h2', fence: 1 });
  });

  it('backs an on-failure VM off, retries it after the backoff, then fails it when its retries are spent', async () => {
    const d = anAgent('h4');
    await d.register();
    await createVm(
      clients,
      {
        id: 'loop',
        owner: 'h4',
        guest: { kind: 'module:spin' },
        memPages: 2,
        restartPolicy: { kind: 'on-failure', maxRetries: 1 },
      },
      now,
    );
    await cycle([d], 3);
    const first = await getVm(clients, 'loop');
    expect(first).toMatchObject({ state: 'PENDING', failures: 1, fence: 2, owner: 'h4' });
    expect(first.retryAt).toBeGreaterThan(now);
    await cycle([d], 5);
    expect((await getVm(clients, 'loop')).state).toBe('PENDING');
    expect(d.kernel.has('loop')).toBe(false);
    await cycle([d], 1, BASE_BACKOFF_MS);
    await cycle([d], 3);
    expect(await getVm(clients, 'loop')).toMatchObject({ state: 'FAILED', failures: 2 });
    // A restart by hand is a fresh try: it runs (and fails) again.
    await restartVm(clients, { id: 'loop', fence: 2, node: 'h4', now });
    await cycle([d], 3);
    expect(await getVm(clients, 'loop')).toMatchObject({ state: 'PENDING', failures: 1, fence: 4 });
  });

  it('restores the newest complete image when the newest is missing, and records the guest time lost', async () => {
    const e = anAgent('h5');
    await e.register();
    await createVm(clients, { id: 'img', owner: 'h5', guest: OK_GUEST, memPages: 4 }, now);
    await cycle([e], 5);
    const older = (await getVm(clients, 'img')).image!;
    await cycle([e], 5);
    const newest = (await getVm(clients, 'img')).image!;
    expect(newest.seq).toBeGreaterThan(older.seq);
    e.crash();
    await clients.s3.send(new DeleteObjectCommand({ Bucket: clients.bucketName, Key: newest.manifest }));
    const e2 = anAgent('h5');
    now += 2 * AGENT_LEASE_MS;
    await e2.register();
    await cycle([e2], 4);
    const vm = await getVm(clients, 'img');
    expect(vm.state).toBe('RUNNING');
    expect(vm.recovery).toMatchObject({ broken: newest.manifest, why: expect.stringMatching(/missing/) });
    expect(vm.recovery!.restored).not.toBe(newest.manifest);
    expect(vm.recovery!.lostSeconds).toBeGreaterThan(0);
    expect(vm.image!.seq).toBeGreaterThan(0);
  });

  it('fails a VM whose images are all unusable, once, instead of retrying every reconcile', async () => {
    const f = anAgent('h6');
    await f.register();
    await createVm(clients, { id: 'lost', owner: 'h6', guest: OK_GUEST, memPages: 4 }, now);
    await cycle([f], 5);
    const newest = (await getVm(clients, 'lost')).image!;
    f.crash();
    for (const ref of await images.listImages('lost'))
      await clients.s3.send(
        new PutObjectCommand({ Bucket: clients.bucketName, Key: ref.manifest, Body: 'not json' }),
      );
    const f2 = anAgent('h6');
    now += 2 * AGENT_LEASE_MS;
    await f2.register();
    await cycle([f2], 4);
    const vm = await getVm(clients, 'lost');
    expect(vm.state).toBe('FAILED');
    expect(vm.reason).toMatch(/^no usable image: image manifest .* is not valid JSON/);
    expect(vm.image).toEqual(newest);
    expect(vm.failures).toBe(1);
  });

  it('refuses to restore an image whose digest differs from the one the table recorded', async () => {
    const g = anAgent('h7');
    await g.register();
    await createVm(clients, { id: 'forged', owner: 'h7', guest: OK_GUEST, memPages: 4 }, now);
    await cycle([g], 10);
    expect((await getVm(clients, 'forged')).image!.seq).toBeGreaterThan(1);
    const { UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
    const { vmKey } = await import('../../shared/storage/keys.ts');
    await clients.doc.send(
      new UpdateCommand({
        TableName: clients.tableName,
        Key: vmKey('forged'),
        UpdateExpression: 'SET image.digest = :d',
        ExpressionAttributeValues: { ':d': '0000000000000bad' },
      }),
    );
    g.crash();
    const g2 = anAgent('h7');
    now += 2 * AGENT_LEASE_MS;
    await g2.register();
    await cycle([g2], 4);
    const vm = await getVm(clients, 'forged');
    // The newest image fails the table's digest; an older one (checked against its own) runs.
    expect(vm.recovery?.why).toMatch(/the table recorded 0000000000000bad/);
    expect(vm.state).toBe('RUNNING');
  });
});
