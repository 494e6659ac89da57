// Hostile and broken guests against real agents and kernels on a virtual clock, with dynalite and
// s3rver: each hostile VM ends FAILED with its reason while a normal VM on the same node keeps
// running and the node keeps its lease; restart policies; restores that fall back past broken images.
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { runReaper } from '../../functions/reaper/reaper.ts';
import { isLive } from '../../shared/domain/placement.ts';
import { BASE_BACKOFF_MS } from '../../shared/domain/restart.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { createVm, getVm, restartVm } from '../../shared/storage/vms.ts';
import { AGENT_LEASE_MS, agentRig, quiet } from '../support/agents.ts';
import { FILL_DISK, GROW_RUN, SPIN_INIT, SPIN_RUN, TRAP_DIGEST, wasmOf } from '../support/hostile.ts';

const OK_GUEST = { kind: 'memory', params: { wsPages: 2, rate: 10_000 } };

describe('hostile and broken guests on a node agent', () => {
  const rig = agentRig();
  const { cycle } = rig;
  const anAgent = (id: string) => rig.anAgent(id, { kernel: { guestBudgetMs: 200, memCapacityPages: 1024 } });
  /** A 2-page VM for `owner` running the registered module `name`. */
  const moduleVm = (id: string, owner: string, name: string) =>
    createVm(rig.clients, { id, owner, guest: { kind: `module:${name}` }, memPages: 2 }, rig.now);
  /** A new agent for `node` once the crashed one's lease has lapsed, after four periods: `vm`'s record then. */
  const restartedWith = async (node: string, vm: string) => {
    const agent = anAgent(node);
    rig.now += 2 * AGENT_LEASE_MS;
    await agent.register();
    await cycle([agent], 4);
    return getVm(rig.clients, vm);
  };

  beforeAll(async () => {
    for (const [name, source] of Object.entries({
      spin: SPIN_RUN,
      trap: TRAP_DIGEST,
      grow: GROW_RUN,
      init: SPIN_INIT,
      fill: FILL_DISK,
    }))
      await rig.images.putModule(name, await wasmOf(source));
  });

  it('fails each hostile VM with its reason while a normal VM keeps running and the lease stays live', async () => {
    const a = anAgent('h1');
    await a.register();
    await createVm(rig.clients, { id: 'ok', owner: 'h1', guest: OK_GUEST, memPages: 4 }, rig.now);
    await moduleVm('spin', 'h1', 'spin');
    await moduleVm('trap', 'h1', 'trap');
    await moduleVm('grow', 'h1', 'grow');
    await moduleVm('init', 'h1', 'init');
    // Several lease periods: the lease must be renewed throughout.
    const liveAt: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      await cycle([a], 10);
      liveAt.push(isLive(await getNode(rig.clients, 'h1'), rig.now));
    }
    expect(liveAt).toEqual([true, true, true, true]);
    expect(a.status()).toBe('ready');
    const state = async (id: string) => {
      const vm = await getVm(rig.clients, id);
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
    expect((await getNode(rig.clients, 'h1')).report?.vms.ok?.load).toBeGreaterThan(0);
  });

  it('reports disk blocks with memory pages, so placement and the balancer count them against the node', async () => {
    const a = anAgent('h8');
    await a.register();
    await moduleVm('disk', 'h8', 'fill');
    await cycle([a], 5);
    const line = (await getNode(rig.clients, 'h8')).report?.vms.disk;
    expect(a.kernel.measure().find((m) => m.id === 'disk')?.diskBlocks).toBeGreaterThan(0);
    expect(line?.memPages).toBeGreaterThan(2);
  });

  it('never lets the reaper move a FAILED VM, even when its node dies; it moves the others', async () => {
    const b = anAgent('h2');
    const c = anAgent('h3');
    await b.register();
    await c.register();
    await createVm(rig.clients, { id: 'ok2', owner: 'h2', guest: OK_GUEST, memPages: 4 }, rig.now);
    await moduleVm('trap2', 'h2', 'trap');
    await cycle([b, c], 5);
    expect((await getVm(rig.clients, 'trap2')).state).toBe('FAILED');
    b.crash();
    await cycle([c], 12);
    const report = await runReaper(
      { clients: rig.clients, clock: rig.clock, log: quiet },
      { graceMs: 100, shard: (id) => id === 'h2' || id === 'h3' },
    );
    expect(report.restarted.map((r) => r.vm)).toEqual(['ok2']);
    expect(await getVm(rig.clients, 'trap2')).toMatchObject({ state: 'FAILED', owner: 'h2', fence: 1 });
  });

  it('backs an on-failure VM off, retries it after the backoff, then fails it when its retries are spent', async () => {
    const d = anAgent('h4');
    await d.register();
    await createVm(
      rig.clients,
      {
        id: 'loop',
        owner: 'h4',
        guest: { kind: 'module:spin' },
        memPages: 2,
        restartPolicy: { kind: 'on-failure', maxRetries: 1 },
      },
      rig.now,
    );
    await cycle([d], 3);
    const first = await getVm(rig.clients, 'loop');
    expect(first).toMatchObject({ state: 'PENDING', failures: 1, fence: 2, owner: 'h4' });
    expect(first.retryAt).toBeGreaterThan(rig.now);
    await cycle([d], 5);
    expect((await getVm(rig.clients, 'loop')).state).toBe('PENDING');
    expect(d.kernel.has('loop')).toBe(false);
    await cycle([d], 1, BASE_BACKOFF_MS);
    await cycle([d], 3);
    expect(await getVm(rig.clients, 'loop')).toMatchObject({ state: 'FAILED', failures: 2 });
    // A restart by hand is a fresh try: it runs (and fails) again.
    await restartVm(rig.clients, { id: 'loop', fence: 2, node: 'h4', now: rig.now });
    await cycle([d], 3);
    expect(await getVm(rig.clients, 'loop')).toMatchObject({ state: 'PENDING', failures: 1, fence: 4 });
  });

  it('restores the newest complete image when the newest is missing, and records the guest time lost', async () => {
    const e = anAgent('h5');
    const older = (await rig.runVm([e], { id: 'img', guest: OK_GUEST, memPages: 4 }, 5)).image!;
    await cycle([e], 5);
    const newest = (await getVm(rig.clients, 'img')).image!;
    expect(newest.seq).toBeGreaterThan(older.seq);
    e.crash();
    await rig.clients.s3.send(
      new DeleteObjectCommand({ Bucket: rig.clients.bucketName, Key: newest.manifest }),
    );
    const vm = await restartedWith('h5', 'img');
    expect(vm.state).toBe('RUNNING');
    expect(vm.recovery).toMatchObject({ broken: newest.manifest, why: expect.stringMatching(/missing/) });
    expect(vm.recovery!.restored).not.toBe(newest.manifest);
    expect(vm.recovery!.lostSeconds).toBeGreaterThan(0);
    expect(vm.image!.seq).toBeGreaterThan(0);
  });

  it('fails a VM whose images are all unusable, once, instead of retrying every reconcile', async () => {
    const f = anAgent('h6');
    const newest = (await rig.runVm([f], { id: 'lost', guest: OK_GUEST, memPages: 4 }, 5)).image!;
    f.crash();
    for (const ref of await rig.images.listImages('lost'))
      await rig.clients.s3.send(
        new PutObjectCommand({ Bucket: rig.clients.bucketName, Key: ref.manifest, Body: 'not json' }),
      );
    const vm = await restartedWith('h6', 'lost');
    expect(vm.state).toBe('FAILED');
    expect(vm.reason).toMatch(/^no usable image: image manifest .* is not valid JSON/);
    expect(vm.image).toEqual(newest);
    expect(vm.failures).toBe(1);
  });

  it('refuses to restore an image whose digest differs from the one the table recorded', async () => {
    const g = anAgent('h7');
    await rig.runVm([g], { id: 'forged', guest: OK_GUEST, memPages: 4 }, 10);
    expect((await getVm(rig.clients, 'forged')).image!.seq).toBeGreaterThan(1);
    const { UpdateCommand } = await import('@aws-sdk/lib-dynamodb');
    const { vmKey } = await import('../../shared/storage/keys.ts');
    await rig.clients.doc.send(
      new UpdateCommand({
        TableName: rig.clients.tableName,
        Key: vmKey('forged'),
        UpdateExpression: 'SET image.digest = :d',
        ExpressionAttributeValues: { ':d': '0000000000000bad' },
      }),
    );
    g.crash();
    const g2 = anAgent('h7');
    rig.now += 2 * AGENT_LEASE_MS;
    await g2.register();
    await cycle([g2], 4);
    const vm = await getVm(rig.clients, 'forged');
    // The newest image fails the table's digest; an older one (checked against its own) runs.
    expect(vm.recovery?.why).toMatch(/the table recorded 0000000000000bad/);
    expect(vm.state).toBe('RUNNING');
  });
});
