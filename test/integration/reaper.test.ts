// The reaper against dynalite: dead nodes' VMs restart elsewhere under a new fence, SUSPENDING
// VMs of dead nodes keep their last image, stuck orders are rolled back or finished.
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runReaper } from '../../functions/reaper/reaper.ts';
import type { MigrationOrder } from '../../shared/domain/vm-state.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { registerNode } from '../../shared/storage/nodes.ts';
import {
  createVm,
  getVm,
  markImageReady,
  markRunning,
  orderMigration,
  recordCheckpoint,
  requestState,
} from '../../shared/storage/vms.ts';
import { freshStores, storeEnv } from '../support/stores.ts';

const quiet = { info: () => {}, warn: () => {} };
const weights = { cpu: 1, io: 0.2, mem: 0.1 };
const image = (vm: string, seq: number) => ({
  manifest: `images/${vm}/1/${seq}/manifest.json`,
  seq,
  digest: `d${seq}`,
  vtod: 0,
});
const GRACE = 1000;
/** An order from `from` to `to`, placed at 10 s with its deadline at 20 s. */
const orderOf = (vm: string, from: string, to: string): MigrationOrder => ({
  id: `${vm}-m`,
  from,
  to,
  phase: 'ORDERED',
  deadline: 20_000,
  orderedAt: 10_000,
  origin: 'test',
});

describe('the reaper', () => {
  let clients: Clients;
  let n = 0;
  /** A fresh pair of node ids per test so tests never see each other's nodes. */
  const ids = () => {
    n += 1;
    return { dead: `dead${n}`, live: `live${n}`, vm: `vm${n}` };
  };
  const node = (id: string, leaseUntil: number) =>
    registerNode(clients, {
      spec: { id, capacity: 1, weights, memCapacityPages: 100 },
      incarnation: `${id}-i`,
      now: leaseUntil - 10_000,
      leaseMs: 10_000,
    });
  const runningVm = async (id: string, owner: string) => {
    await createVm(clients, { id, owner, guest: { kind: 'memory' }, memPages: 2 }, 0);
    await markRunning(clients, { id, node: owner, fence: 1, now: 1 });
    await recordCheckpoint(clients, { id, node: owner, fence: 1, image: image(id, 1), now: 2 });
  };
  const reap = (now: number, only: string[]) =>
    runReaper(
      { clients, clock: () => now, log: quiet },
      { graceMs: GRACE, shard: (id) => only.includes(id) },
    );

  beforeAll(async () => {
    clients = await freshStores();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('restarts a dead node’s VM on a live node under a new fence, so the dead node’s late writes fail', async () => {
    const { dead, live, vm } = ids();
    await node(dead, 50_000);
    await node(live, 100_000);
    await runningVm(vm, dead);
    const report = await reap(50_000 + GRACE + 1, [dead, live]);
    expect(report.deadNodes).toEqual([dead]);
    expect(report.restarted).toEqual([{ vm, from: dead, to: live }]);
    const moved = await getVm(clients, vm);
    expect(moved).toMatchObject({ owner: live, state: 'PENDING', fence: 2, image: image(vm, 1) });
    await expect(
      recordCheckpoint(clients, { id: vm, node: dead, fence: 1, image: image(vm, 2), now: 3 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
  });

  it('never restarts a VM its owner started after the reaper read it PENDING (stale read)', async () => {
    const { dead, live, vm } = ids();
    await node(dead, 50_000);
    await node(live, 100_000);
    await createVm(clients, { id: vm, owner: dead, guest: { kind: 'memory' }, memPages: 2 }, 0);
    // Between the reaper's read and its write, the owner re-registers and starts the VM under the
    // same fence: PENDING → RUNNING keeps fence 1, so only the state the reaper read can tell.
    const send = clients.doc.send.bind(clients.doc);
    let raced = false;
    vi.spyOn(clients.doc, 'send').mockImplementation((async (command: {
      input: { ConditionExpression?: string };
    }) => {
      if (!raced && command.input.ConditionExpression?.includes('#owner = :dead')) {
        raced = true;
        await markRunning(clients, {
          id: vm,
          node: dead,
          fence: 1,
          now: 50_000 + GRACE + 2,
          incarnation: 'inc-new',
        });
      }
      return send(command as never);
    }) as never);
    const report = await reap(50_000 + GRACE + 1, [dead, live]);
    expect(raced).toBe(true);
    expect(report.restarted).toEqual([]);
    expect(report.raced).toBe(1);
    expect(await getVm(clients, vm)).toMatchObject({
      owner: dead,
      state: 'RUNNING',
      fence: 1,
      startedBy: 'inc-new',
    });
  });

  it('waits out the grace before declaring a node dead', async () => {
    const { dead, live, vm } = ids();
    await node(dead, 50_000);
    await node(live, 100_000);
    await runningVm(vm, dead);
    const report = await reap(50_000 + GRACE, [dead, live]);
    expect(report.deadNodes).toEqual([]);
    expect((await getVm(clients, vm)).owner).toBe(dead);
  });

  it('leaves a dead node’s VM where it is when no live node can take it', async () => {
    const { dead, vm } = ids();
    await node(dead, 50_000);
    await runningVm(vm, dead);
    const report = await reap(60_000, [dead]);
    expect(report.homeless).toEqual([vm]);
    expect((await getVm(clients, vm)).fence).toBe(1);
  });

  it('suspends a dead node’s SUSPENDING VM from its last image, owner kept', async () => {
    const { dead, live, vm } = ids();
    await node(dead, 50_000);
    await node(live, 100_000);
    await runningVm(vm, dead);
    await requestState(clients, { id: vm, fence: 1, want: 'SUSPENDING', now: 3 });
    const report = await reap(60_000, [dead, live]);
    expect(report.suspended).toEqual([vm]);
    expect(await getVm(clients, vm)).toMatchObject({ state: 'SUSPENDED', owner: dead, image: image(vm, 1) });
  });

  it('rolls back an ORDERED migration past its deadline and records it as aborted', async () => {
    const { dead: source, live: target, vm } = ids();
    await node(source, 100_000);
    await node(target, 100_000);
    await runningVm(vm, source);
    const order = orderOf(vm, source, target);
    await orderMigration(clients, vm, 1, order);
    const report = await reap(30_000, [source, target]);
    expect(report.stuckMigrations).toBe(1);
    expect(report.aborted).toEqual([vm]);
    const after = await getVm(clients, vm);
    expect(after.migration).toBeUndefined();
    expect(after).toMatchObject({ owner: source, fence: 1, state: 'RUNNING' });
    expect(await getMigration(clients, order.id)).toMatchObject({ outcome: 'aborted', by: 'reaper' });
  });

  it('finishes an IMAGE_READY migration past its deadline on the target, or on the source if the target died', async () => {
    for (const targetAlive of [true, false]) {
      const { dead: source, live: target, vm } = ids();
      await node(source, 100_000);
      await node(target, targetAlive ? 100_000 : 5_000);
      await runningVm(vm, source);
      const order = orderOf(vm, source, target);
      await orderMigration(clients, vm, 1, order);
      await markImageReady(clients, {
        id: vm,
        order,
        fence: 1,
        image: image(vm, 2),
        stoppedAt: 11_000,
        bytes: { precopy: 10, final: 5 },
        now: 11_000,
        deadline: 21_000,
      });
      expect((await reap(21_000, [source, target])).settled).toEqual([]);
      const report = await reap(30_000, [source, target]);
      const to = targetAlive ? target : source;
      expect(report.settled).toEqual([{ vm, to }]);
      expect(await getVm(clients, vm)).toMatchObject({
        owner: to,
        state: 'PENDING',
        fence: 2,
        image: image(vm, 2),
      });
      expect(await getMigration(clients, order.id)).toMatchObject({
        outcome: 'settled',
        settledOn: to,
        bytes: { precopy: 10, final: 5 },
      });
    }
  });

  it('runs as a Lambda handler with clients from the environment', async () => {
    Object.assign(process.env, storeEnv(clients));
    const writes: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const { handler } = await import('../../functions/reaper/handler.ts');
    const report = await handler({});
    expect(report.at).toBeGreaterThan(0);
    const emf = writes.map((w) => w.trim()).find((w) => w.includes('StuckMigrations'));
    expect(emf).toBeDefined();
    expect(JSON.parse(emf!).StuckMigrations).toBe(report.stuckMigrations);
  });
});
