// A source stops its guest right after writing IMAGE_READY, and that write moves no fence. A read of
// the item taken before the write but acted on after the stop (the migration bench in `seesaw up`'s
// topology caught one: a watch's read that raced the hand-over) shows the source a VM it owns, RUNNING
// and ORDERED, that it no longer holds: "recover". The restart must then be refused by the table, not
// drop the order the target is taking. Real table (dynalite).
import { describe, expect, it } from 'vitest';
import { nextAction } from '../../shared/domain/protocol.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import {
  createVm,
  getVm,
  markImageReady,
  markRunning,
  orderMigration,
  restartOwn,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';

const image = { manifest: 'vm/v1/manifest-2', seq: 2, digest: 'd', vtod: 0 };

async function orderedFromA(clients: Awaited<ReturnType<typeof freshStores>>, id: string) {
  await createVm(clients, { id, owner: 'a', guest: { kind: 'cpu' }, memPages: 1 }, 100);
  await markRunning(clients, { id, node: 'a', fence: 1, now: 110 });
  const order = {
    id: `${id}-m`,
    from: 'a',
    to: 'b',
    phase: 'ORDERED' as const,
    deadline: 10_000,
    orderedAt: 120,
    origin: 'test',
  };
  return orderMigration(clients, id, 1, order);
}

describe('restarting a VM its own node lost', () => {
  it('is what the source decides from a read taken before its own hand-over, once it stopped the guest', async () => {
    const clients = await freshStores();
    const stale = await orderedFromA(clients, 'v1');
    const decided = nextAction({
      vm: stale,
      self: 'a',
      held: undefined,
      now: 200,
      checkpointDue: false,
      busyElsewhere: false,
    });
    expect(decided.kind).toBe('recover');
  });

  it('is refused once the VM is handed over (IMAGE_READY), and the item keeps the order for the target', async () => {
    const clients = await freshStores();
    const stale = await orderedFromA(clients, 'v2');
    await markImageReady(clients, {
      id: 'v2',
      order: stale.migration as NonNullable<VmRecord['migration']>,
      fence: 1,
      image,
      stoppedAt: 150,
      bytes: { precopy: 10, final: 5 },
      now: 160,
    });
    const before = await getVm(clients, 'v2');
    expect(before.migration?.phase).toBe('IMAGE_READY');
    await expect(
      restartOwn(clients, { id: 'v2', node: 'a', fence: stale.fence, now: 200, seen: 'RUNNING' }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    expect(await getVm(clients, 'v2')).toEqual(before);
    // the fresh read the agent takes after the refusal decides nothing for the source
    const fresh = nextAction({
      vm: before,
      self: 'a',
      held: undefined,
      now: 200,
      checkpointDue: false,
      busyElsewhere: false,
    });
    expect(fresh.kind).toBe('none');
  });

  it('still restarts a VM it owns and lost while the order is only ORDERED (the node fenced itself)', async () => {
    const clients = await freshStores();
    const ordered = await orderedFromA(clients, 'v3');
    const out = await restartOwn(clients, {
      id: 'v3',
      node: 'a',
      fence: ordered.fence,
      now: 200,
      seen: 'RUNNING',
    });
    expect(out).toMatchObject({ owner: 'a', state: 'PENDING', fence: ordered.fence + 1 });
    expect(out.migration).toBeUndefined();
  });
});
