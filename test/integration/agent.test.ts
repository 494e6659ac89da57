// Agents in one process on a virtual clock, with real kernels, dynalite and s3rver: the VM
// lifecycle (start, checkpoint, suspend, resume, delete), load reports, self-fencing, and a
// restarted node that must not resume what moved on.
import { beforeAll, describe, expect, it } from 'vitest';
import { orderDeadline } from '../../shared/domain/protocol.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore, type ImageStore } from '../../shared/storage/image-store.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { getNode, NodeHeld, registerNode } from '../../shared/storage/nodes.ts';
import {
  abortMigration,
  createVm,
  findVm,
  getVm,
  markRunning,
  orderMigration,
  requestState,
  restartElsewhere,
  resumeVm,
} from '../../shared/storage/vms.ts';
import { type AgentOptions, agentRig } from '../support/agents.ts';
import { freshStores } from '../support/stores.ts';

const GUEST = { kind: 'memory', params: { wsPages: 4, rate: 10_000 } };

describe('the node agent', () => {
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
  const anAgent = (id: string, faults?: AgentOptions['faults']) => rig.anAgent(id, { faults });

  beforeAll(async () => {
    clients = await freshStores();
    images = createImageStore(clients);
  });

  it('starts a pending VM, runs it, reports it and checkpoints it', async () => {
    const a = anAgent('n1');
    await a.register();
    await createVm(clients, { id: 'life', owner: 'n1', guest: GUEST, memPages: 5 }, now);
    await cycle([a], 6);
    const vm = await getVm(clients, 'life');
    expect(vm.state).toBe('RUNNING');
    expect(a.kernel.running()).toEqual(['life']);
    expect(vm.image?.seq).toBeGreaterThan(0);
    const report = (await getNode(clients, 'n1')).report;
    expect(report?.vms.life).toMatchObject({ fence: 1, memPages: 5, busy: false });
    expect(report?.vms.life?.load).toBeGreaterThan(0);
  });

  it('suspends to an image, resumes on another node from it, and deletes with its images', async () => {
    const [a, b] = [anAgent('s1'), anAgent('s2')];
    await a.register();
    await b.register();
    await createVm(clients, { id: 'sus', owner: 's1', guest: GUEST, memPages: 5 }, now);
    await cycle([a, b], 3);
    await requestState(clients, { id: 'sus', fence: 1, want: 'SUSPENDING', now });
    await cycle([a, b], 2);
    const suspended = await getVm(clients, 'sus');
    expect(suspended).toMatchObject({ state: 'SUSPENDED', owner: 's1' });
    expect(a.kernel.has('sus')).toBe(false);
    await resumeVm(clients, { id: 'sus', fence: suspended.fence, node: 's2', now });
    await cycle([a, b], 1);
    // Resumed but not yet ticked: exactly the suspended state.
    expect(b.kernel.running()).toEqual(['sus']);
    expect(b.kernel.digest('sus')).toBe(suspended.image?.digest);
    await cycle([a, b], 1);
    const resumed = await getVm(clients, 'sus');
    expect(resumed).toMatchObject({ state: 'RUNNING', owner: 's2', fence: 2 });
    await requestState(clients, { id: 'sus', fence: resumed.fence, want: 'DELETING', now });
    await cycle([a, b], 2);
    expect(await findVm(clients, 'sus')).toBeUndefined();
    expect(b.kernel.has('sus')).toBe(false);
    expect(await images.deleteVmImages('sus')).toBe(0);
  });

  it('migrates a running guest between agents and records bytes and downtime', async () => {
    const [a, b] = [anAgent('m1'), anAgent('m2')];
    await a.register();
    await b.register();
    await createVm(clients, { id: 'mig', owner: 'm1', guest: GUEST, memPages: 5 }, now);
    await cycle([a, b], 3);
    const vm = await getVm(clients, 'mig');
    await orderMigration(clients, 'mig', vm.fence, {
      id: 'mig-1',
      from: 'm1',
      to: 'm2',
      phase: 'ORDERED',
      deadline: orderDeadline(now, 5),
      orderedAt: now,
      origin: 'test',
    });
    await cycle([a, b], 3);
    expect(await getVm(clients, 'mig')).toMatchObject({
      owner: 'm2',
      state: 'RUNNING',
      fence: vm.fence + 1,
      moves: 1,
    });
    expect(a.kernel.has('mig')).toBe(false);
    expect(b.kernel.running()).toEqual(['mig']);
    const record = await getMigration(clients, 'mig-1');
    expect(record).toMatchObject({ outcome: 'completed', from: 'm1', to: 'm2', by: 'm2' });
    // Five pages are below the pre-copy floor: the guest is stopped and its dirty pages copied at once.
    expect(record?.bytes?.precopy).toBe(0);
    expect(record?.bytes?.final).toBeGreaterThanOrEqual(4 * 65536);
    expect(record?.downtimeMs).toBeGreaterThanOrEqual(0);
    expect((await getVm(clients, 'mig')).cooldownUntil).toBeGreaterThan(now);
  });

  it('resumes the guest on the source when its order is aborted before the image is ready', async () => {
    let abortNow = false;
    const a = anAgent('r1', async (point, ctx) => {
      if (point === 'markImageReady' && ctx.phase === 'before' && abortNow) {
        abortNow = false;
        await abortMigration(clients, 'ab', 'ab-1', now);
      }
      return undefined;
    });
    const b = anAgent('r2');
    await a.register();
    await b.register();
    await createVm(clients, { id: 'ab', owner: 'r1', guest: GUEST, memPages: 5 }, now);
    await cycle([a, b], 3);
    const vm = await getVm(clients, 'ab');
    abortNow = true;
    await orderMigration(clients, 'ab', vm.fence, {
      id: 'ab-1',
      from: 'r1',
      to: 'r2',
      phase: 'ORDERED',
      deadline: orderDeadline(now, 5),
      orderedAt: now,
      origin: 'test',
    });
    await cycle([a, b], 3);
    expect(await getVm(clients, 'ab')).toMatchObject({ owner: 'r1', fence: vm.fence, state: 'RUNNING' });
    expect(a.kernel.running()).toEqual(['ab']);
    expect(b.kernel.has('ab')).toBe(false);
  });

  it('fences itself when it cannot renew its lease, and after re-registering runs only what it still owns', async () => {
    const [a, b] = [anAgent('f1'), anAgent('f2')];
    await a.register();
    await b.register();
    await createVm(clients, { id: 'keep', owner: 'f1', guest: GUEST, memPages: 5 }, now);
    await createVm(clients, { id: 'gone', owner: 'f1', guest: GUEST, memPages: 5 }, now);
    await cycle([a, b], 4);
    expect(a.kernel.running().sort()).toEqual(['gone', 'keep']);
    // f1 stalls: no heartbeats. Ticks alone must stop its guests before the lease lapses.
    for (let i = 0; i < 12; i += 1) {
      now += 100;
      a.tick();
      b.tick();
      await b.heartbeat(100);
    }
    expect(a.kernel.running()).toEqual([]);
    expect(a.status()).toBe('fenced');
    // Meanwhile the reaper's move: `gone` restarts on f2 under a new fence.
    const gone = await getVm(clients, 'gone');
    await restartElsewhere(clients, {
      id: 'gone',
      deadNode: 'f1',
      fence: gone.fence,
      node: 'f2',
      now,
      seen: 'RUNNING',
    });
    const incarnation = a.incarnation;
    await cycle([a, b], 4);
    expect(a.incarnation).not.toBe(incarnation);
    expect(a.kernel.running()).toEqual(['keep']);
    expect(b.kernel.running()).toEqual(['gone']);
    expect((await getVm(clients, 'keep')).fence).toBe(2);
  });

  it('is refused while a previous incarnation’s lease is live, and takes the node over once it lapsed', async () => {
    const old = anAgent('w1');
    await old.register();
    await createVm(clients, { id: 'wait', owner: 'w1', guest: GUEST, memPages: 5 }, now);
    await cycle([old], 3);
    const held = await getNode(clients, 'w1');
    old.crash();
    const fresh = anAgent('w1');
    await expect(fresh.register()).rejects.toBeInstanceOf(NodeHeld);
    expect(fresh.status()).toBe('new');
    expect((await getNode(clients, 'w1')).incarnation).toBe(old.incarnation);
    // Each heartbeat tries again and is refused, until the old lease has lapsed.
    while (now + 100 <= held.leaseUntil) {
      now += 100;
      await expect(fresh.heartbeat(100)).rejects.toBeInstanceOf(NodeHeld);
      await fresh.reconcile();
      expect(fresh.kernel.has('wait')).toBe(false);
    }
    await cycle([fresh], 4);
    expect(fresh.status()).toBe('ready');
    expect((await getNode(clients, 'w1')).incarnation).toBe(fresh.incarnation);
    expect(fresh.kernel.running()).toEqual(['wait']);
    expect((await getVm(clients, 'wait')).fence).toBe(2);
  });

  it('never runs a VM that another incarnation of its node id marked RUNNING, and stops when it does not hold the node', async () => {
    let other = '';
    const a = anAgent('m1', async (point, ctx) => {
      // Another process takes the node id over and starts the VM between this agent's load and its markRunning.
      if (point === 'markRunning' && ctx.phase === 'before' && !other) {
        other = 'another-incarnation';
        await registerNode(clients, {
          spec: { id: 'm1', capacity: 1, weights: { cpu: 1, io: 0, mem: 0 }, memCapacityPages: 1 },
          incarnation: other,
          now,
          leaseMs: 1000,
          replaces: a.incarnation,
        });
        await markRunning(clients, { id: 'twin', node: 'm1', fence: 1, now, incarnation: other });
      }
      return undefined;
    });
    await a.register();
    await createVm(clients, { id: 'twin', owner: 'm1', guest: GUEST, memPages: 5 }, now);
    await a.reconcile();
    await a.idle();
    expect(other).not.toBe('');
    expect(a.kernel.has('twin')).toBe(false);
    expect(a.holdings().has('twin')).toBe(false);
    expect(a.status()).toBe('superseded');
    expect(await getVm(clients, 'twin')).toMatchObject({ state: 'RUNNING', fence: 1, startedBy: other });
  });
});
