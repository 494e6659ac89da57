import { beforeAll, describe, expect, it } from 'vitest';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed, NotFound } from '../../shared/storage/errors.ts';
import {
  claimNode,
  getNode,
  listNodes,
  NodeHeld,
  patchNode,
  registerNode,
  renewLease,
} from '../../shared/storage/nodes.ts';
import {
  abortMigration,
  createVm,
  getVm,
  listVmsForNode,
  listVmsPage,
  markImageReady,
  markRunning,
  orderMigration,
  takeOwnership,
} from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';

const weights = { cpu: 1, io: 0.2, mem: 0.1 };
const aNodeSpec = (id: string) => ({ id, capacity: 4, weights, memCapacityPages: 4096 });
const image = (seq: number) => ({ manifest: `images/vm/${seq}.json`, seq, digest: `d${seq}`, vtod: 1000 });

describe('DynamoDB repository against dynalite', () => {
  let clients: Clients;
  beforeAll(async () => {
    clients = await freshStores();
  });

  it('registers nodes, lists them through the kind index and keeps admin state across re-registration', async () => {
    await registerNode(clients, { spec: aNodeSpec('n1'), incarnation: 'inc-1', now: 1000, leaseMs: 5000 });
    await registerNode(clients, { spec: aNodeSpec('n2'), incarnation: 'inc-1', now: 1000, leaseMs: 5000 });
    await patchNode(clients, 'n1', { draining: true, loadOverride: 7 }, 1100);
    const again = await registerNode(clients, {
      spec: aNodeSpec('n1'),
      incarnation: 'inc-2',
      now: 6001,
      leaseMs: 5000,
    });
    expect(again.draining).toBe(true);
    expect(again.loadOverride).toBe(7);
    expect((await listNodes(clients)).map((n) => n.id)).toEqual(['n1', 'n2']);
    await patchNode(clients, 'n1', { loadOverride: null }, 6100);
    expect((await getNode(clients, 'n1')).loadOverride).toBeUndefined();
  });

  it('refuses to register a node whose live lease another incarnation holds, naming the holder', async () => {
    const holder = { pid: 4242, host: 'host-a' };
    await registerNode(clients, {
      spec: aNodeSpec('nh'),
      incarnation: 'inc-a',
      now: 1000,
      leaseMs: 5000,
      holder,
    });
    const refused = registerNode(clients, {
      spec: aNodeSpec('nh'),
      incarnation: 'inc-b',
      now: 3000,
      leaseMs: 5000,
      holder: { pid: 7, host: 'b' },
    });
    await expect(refused).rejects.toBeInstanceOf(NodeHeld);
    await expect(refused).rejects.toThrow(
      'node nh is held by a live agent: incarnation inc-a (pid 4242 on host-a); its lease ends at 1970-01-01T00:00:06.000Z (in 3.0 s)',
    );
    // Even at the lease's last instant; and a process naming some other incarnation as its own does not help.
    await expect(
      registerNode(clients, { spec: aNodeSpec('nh'), incarnation: 'inc-b', now: 6000, leaseMs: 5000 }),
    ).rejects.toBeInstanceOf(NodeHeld);
    await expect(
      registerNode(clients, {
        spec: aNodeSpec('nh'),
        incarnation: 'inc-b',
        now: 3000,
        leaseMs: 5000,
        replaces: 'inc-x',
      }),
    ).rejects.toBeInstanceOf(NodeHeld);
    expect(await getNode(clients, 'nh')).toMatchObject({ incarnation: 'inc-a', leaseUntil: 6000, holder });
    // The holder itself may re-register under a new incarnation while its lease is live.
    await registerNode(clients, {
      spec: aNodeSpec('nh'),
      incarnation: 'inc-a2',
      now: 4000,
      leaseMs: 5000,
      replaces: 'inc-a',
      holder,
    });
    expect((await getNode(clients, 'nh')).incarnation).toBe('inc-a2');
    // Once the lease has lapsed, anyone takes the node over.
    const taken = await registerNode(clients, {
      spec: aNodeSpec('nh'),
      incarnation: 'inc-b',
      now: 9001,
      leaseMs: 5000,
      holder: { pid: 7, host: 'b' },
    });
    expect(taken).toMatchObject({ incarnation: 'inc-b', leaseUntil: 14_001, holder: { pid: 7, host: 'b' } });
  });

  it('lets one of two concurrent registrations of a new node win and refuses the other', async () => {
    const results = await Promise.allSettled(
      ['inc-1', 'inc-2', 'inc-3'].map((inc) =>
        registerNode(clients, { spec: aNodeSpec('nrace'), incarnation: inc, now: 1000, leaseMs: 5000 }),
      ),
    );
    // The first write creates the item; the others find a live lease of another incarnation.
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(NodeHeld);
  });

  it('records which incarnation marked a VM RUNNING', async () => {
    await createVm(clients, { id: 'vm-inc', owner: 'n-inc', guest: { kind: 'idle' }, memPages: 1 }, 1000);
    const running = await markRunning(clients, {
      id: 'vm-inc',
      node: 'n-inc',
      fence: 1,
      now: 1001,
      incarnation: 'inc-2',
    });
    expect(running.startedBy).toBe('inc-2');
  });

  it('refuses to renew a lease held by another incarnation or already lapsed', async () => {
    await registerNode(clients, { spec: aNodeSpec('n3'), incarnation: 'inc-a', now: 0, leaseMs: 1000 });
    await expect(
      renewLease(clients, { id: 'n3', incarnation: 'inc-b', now: 500, leaseMs: 1000 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    await expect(
      renewLease(clients, { id: 'n3', incarnation: 'inc-a', now: 2000, leaseMs: 1000 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    const renewed = await renewLease(clients, { id: 'n3', incarnation: 'inc-a', now: 900, leaseMs: 1000 });
    expect(renewed.leaseUntil).toBe(1900);
  });

  it('lets only one run claim a node until the claim expires', async () => {
    await registerNode(clients, { spec: aNodeSpec('n4'), incarnation: 'inc', now: 0, leaseMs: 1000 });
    await claimNode(clients, { id: 'n4', run: 'run-1', now: 100, until: 200 });
    await expect(claimNode(clients, { id: 'n4', run: 'run-2', now: 150, until: 300 })).rejects.toBeInstanceOf(
      ConditionFailed,
    );
    await claimNode(clients, { id: 'n4', run: 'run-2', now: 250, until: 400 });
    expect((await getNode(clients, 'n4')).claim).toEqual({ run: 'run-2', until: 400 });
  });

  it('reports a missing node as NotFound', async () => {
    await expect(getNode(clients, 'nope')).rejects.toBeInstanceOf(NotFound);
    await expect(patchNode(clients, 'nope', { draining: true }, 1)).rejects.toBeInstanceOf(NotFound);
  });

  it('walks a VM through order, image-ready and take-ownership, fencing out stale writers', async () => {
    await createVm(clients, { id: 'vm-1', owner: 'n1', guest: { kind: 'cpu' }, memPages: 16 }, 1000);
    await expect(
      createVm(clients, { id: 'vm-1', owner: 'n2', guest: { kind: 'cpu' }, memPages: 16 }, 1000),
    ).rejects.toBeInstanceOf(ConditionFailed);
    await markRunning(clients, { id: 'vm-1', node: 'n1', fence: 1, now: 1001 });
    const order = {
      id: 'm-1',
      from: 'n1',
      to: 'n2',
      phase: 'ORDERED' as const,
      deadline: 9000,
      orderedAt: 1002,
      origin: 'test',
    };
    await orderMigration(clients, 'vm-1', 1, order);
    // A second order while one is in flight loses.
    await expect(orderMigration(clients, 'vm-1', 1, { ...order, id: 'm-2' })).rejects.toBeInstanceOf(
      ConditionFailed,
    );
    await markImageReady(clients, {
      id: 'vm-1',
      order,
      fence: 1,
      image: image(1),
      stoppedAt: 1003,
      bytes: { precopy: 10, final: 2 },
      now: 1003,
    });
    expect((await listVmsForNode(clients, 'n2')).map((v) => v.id)).toEqual(['vm-1']);
    expect(await listVmsForNode(clients, 'n1')).toEqual([]);
    // The order can no longer be aborted once the image is ready.
    await expect(abortMigration(clients, 'vm-1', 'm-1', 1004)).rejects.toBeInstanceOf(ConditionFailed);
    await takeOwnership(clients, {
      id: 'vm-1',
      migrationId: 'm-1',
      fence: 1,
      node: 'n2',
      now: 1005,
      cooldownUntil: 5000,
    });
    const moved = await getVm(clients, 'vm-1');
    expect(moved).toMatchObject({ owner: 'n2', fence: 2, state: 'RUNNING', moves: 1, cooldownUntil: 5000 });
    expect(moved.migration).toBeUndefined();
    // A repeated take (an order delivered twice) fails on the fence instead of forking the VM.
    await expect(
      takeOwnership(clients, {
        id: 'vm-1',
        migrationId: 'm-1',
        fence: 1,
        node: 'n2',
        now: 1006,
        cooldownUntil: 5000,
      }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    expect((await getVm(clients, 'vm-1')).fence).toBe(2);
  });

  it('pages through VMs with a filter and rejects a forged cursor', async () => {
    for (const id of ['p-1', 'p-2', 'p-3']) {
      await createVm(clients, { id, owner: 'n9', guest: { kind: 'idle' }, memPages: 1 }, 1);
    }
    const first = await listVmsPage(clients, { limit: 2, owner: 'n9' });
    const rest = first.next
      ? await listVmsPage(clients, { limit: 10, owner: 'n9', cursor: first.next })
      : { items: [] };
    expect([...first.items, ...rest.items].map((v) => v.id).filter((id) => id.startsWith('p-'))).toEqual([
      'p-1',
      'p-2',
      'p-3',
    ]);
    await expect(listVmsPage(clients, { limit: 2, cursor: 'not-a-cursor' })).rejects.toThrow(/cursor/);
  });
});
