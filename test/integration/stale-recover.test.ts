// A source stops its guest right after writing IMAGE_READY, and that write moves no fence. A read of
// the item taken before the write but acted on after the stop (the migration bench in `seesaw up`'s
// topology caught one: a watch's read that raced the hand-over) shows the source a VM it owns, RUNNING
// and ORDERED, that it no longer holds: "recover". The restart must then be refused by the table, not
// drop the order the target is taking. Real table (dynalite).
import { GetCommand } from '@aws-sdk/lib-dynamodb';
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
import { agentRig, pollUntil, runAndOrder } from '../support/agents.ts';
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

/** What node `a`, the source, decides from `vm` once it no longer holds the guest. */
const sourceDecides = (vm: VmRecord) =>
  nextAction({ vm, self: 'a', held: undefined, now: 200, checkpointDue: false, busyElsewhere: false });

describe('restarting a VM its own node lost', () => {
  it('is what the source decides from a read taken before its own hand-over, once it stopped the guest', async () => {
    const clients = await freshStores();
    const stale = await orderedFromA(clients, 'v1');
    const decided = sourceDecides(stale);
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
    const fresh = sourceDecides(before);
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

describe("a source's watch whose read raced its own hand-over", () => {
  const rig = agentRig();
  const GUEST = { kind: 'memory', params: { wsPages: 4, rate: 10_000 } };

  /**
   * The source's own clients: the first read of the VM item that sees the target ready is held back
   * (the table answered it; the answer is late) until `release`. That read is the source's watch's.
   */
  function heldReads(vm: string) {
    let release: () => void = () => {};
    let held = false;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const doc = {
      async send(command: unknown) {
        const out = await rig.clients.doc.send(command as never);
        const item = (out as { Item?: VmRecord }).Item;
        if (
          !held &&
          command instanceof GetCommand &&
          item?.id === vm &&
          item.migration?.targetReadyAt !== undefined
        ) {
          held = true;
          await released;
        }
        return out;
      },
    };
    return { clients: { ...rig.clients, doc } as typeof rig.clients, isHeld: () => held, release };
  }

  it('acts on a read taken anew, not on the late one: no restart, and the target takes the VM', async () => {
    const hold = heldReads('rw');
    const lines: { msg?: string; obj: object }[] = [];
    const keep = (obj: object, msg?: string) => lines.push({ obj, msg });
    const log = { info: keep, warn: keep, error: keep, debug: keep };
    const a = rig.anAgent('r1', { clients: hold.clients, log });
    const b = rig.anAgent('r2');
    const before = await runAndOrder(rig, 'rw', GUEST, a, b);
    // The source pre-copies and announces, then watches for the target's ready.
    await a.reconcile();
    await a.idle();
    // The target prepares and says it is ready; the source's watch reads that, and its answer is held.
    await b.reconcile();
    await b.idle();
    await pollUntil(async () => (hold.isHeld() ? true : undefined), 5000);
    // Meanwhile the source's reconcile hands the VM over and stops its guest.
    await a.reconcile();
    await a.idle();
    const handed = await getVm(rig.clients, 'rw');
    expect(handed.migration?.phase).toBe('IMAGE_READY');
    expect(a.kernel.has('rw')).toBe(false);
    // Now the watch gets its answer from before the hand-over.
    hold.release();
    const moved = await pollUntil(async () => {
      const vm = await getVm(rig.clients, 'rw');
      return vm.owner === 'r2' && vm.state === 'RUNNING' && !vm.migration ? vm : undefined;
    }, 10_000);
    expect(moved.fence).toBe(before.fence + 1);
    // The source never tried to restart it: the late read was not acted on.
    expect(lines.filter((l) => /lost/.test(l.msg ?? ''))).toEqual([]);
    expect(lines.filter((l) => (l.obj as { action?: string }).action === 'recover')).toEqual([]);
  });
});
