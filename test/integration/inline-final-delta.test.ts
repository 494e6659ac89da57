// The final delta carried in the hand-over write (the VM item's inlineImage) against dynalite and
// s3rver: the target applies it without touching S3 and publishes it after its first tick; a crash
// at each step after the hand-over loses nothing (the item or S3 holds it); a hand-over that fails
// or does not fit publishes it at once; and a buggy peer's inline image never takes the target down.
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../node-agent/agent/agent.ts';
import type { FaultHook } from '../../node-agent/agent/faults.ts';
import type { Kernel } from '../../node-agent/kernel/types.ts';
import { Corrupt } from '../../shared/storage/errors.ts';
import { vmKey } from '../../shared/storage/keys.ts';
import { INLINE_IMAGE_BYTES } from '../../shared/storage/switchover.ts';
import { abortMigration, getVm, type VmRecord } from '../../shared/storage/vms.ts';
import {
  AGENT_LEASE_MS,
  agentRig,
  crashOnceBefore,
  pollUntil,
  quiet,
  runAndOrder,
} from '../support/agents.ts';

const GUEST = { kind: 'memory', params: { wsPages: 4, rate: 10_000 } };

describe('the final delta in the hand-over item', () => {
  const rig = agentRig(7_000_000);
  const { cycle } = rig;

  const arrivals: { vm: string; phases: { path?: string; inline?: boolean } }[] = [];
  const handOvers: { vm: string; phases: { uploadMs?: number; inlineBytes?: number } }[] = [];
  const warnings: string[] = [];
  const log = {
    ...quiet,
    info: (obj: object, msg?: string) => {
      if (msg === 'migrated in') arrivals.push(obj as (typeof arrivals)[number]);
      if (msg === 'image handed over') handOvers.push(obj as (typeof handOvers)[number]);
    },
    warn: (obj: object, msg?: string) => {
      warnings.push(`${msg}: ${JSON.stringify(obj)}`);
    },
  };
  const anAgent = (id: string, faults?: FaultHook, alterKernel?: (kernel: Kernel) => void) =>
    rig.anAgent(id, { faults, alterKernel, log });
  const until = <T>(probe: () => Promise<T | undefined>, ms = 15_000) => pollUntil(probe, ms);

  /** Whether S3 holds a readable image at `key` (every checksum verified). */
  const onS3 = async (key: string) => {
    try {
      await rig.images.getImage(key);
      return true;
    } catch (error) {
      if (error instanceof Corrupt) return false;
      throw error;
    }
  };

  const ordered = (vm: string, from: Agent, to: Agent) => runAndOrder(rig, vm, GUEST, from, to);

  /** The item once the migration is IMAGE_READY (the source handed over). */
  const handedOver = (id: string) =>
    until(async () => {
      const vm = await getVm(rig.clients, id);
      return vm.migration?.phase === 'IMAGE_READY' ? vm : undefined;
    });

  /** The VM owned by `to`, RUNNING, its kernel running it, and no inline image left in the item. */
  const settledOn = (id: string, to: Agent) =>
    until(async () => {
      const vm = await getVm(rig.clients, id);
      const done = vm.owner === to.nodeId && vm.state === 'RUNNING' && !vm.migration && !vm.inlineImage;
      return done && to.kernel.running().includes(id) ? vm : undefined;
    });

  /** A new process for a crashed node, once the crashed one's lease has lapsed. */
  async function restart(id: string, others: Agent[]) {
    rig.now += AGENT_LEASE_MS + 1;
    const next = anAgent(id);
    await next.register();
    await cycle([...others, next], 1);
    return next;
  }

  it('hands over with the final delta in the item, applies it without S3, then publishes it and drops it from the item', async () => {
    let atHandOver: { vm: VmRecord } | undefined;
    const look: FaultHook = async (point, ctx) => {
      if (point === 'markImageReady' && ctx.phase === 'after')
        atHandOver = { vm: await getVm(rig.clients, 'in') };
      return undefined;
    };
    // What S3 held just before the target published the item's object. (Looked at from the source's
    // hook instead, the target, woken by the hand-over, could already have published it: a race.)
    let atPublish: { key?: string; onS3: boolean } | undefined;
    const beforePublish: FaultHook = async (point, ctx) => {
      if (point === 'publishInline' && ctx.phase === 'before' && ctx.vm === 'in' && !atPublish) {
        const key = (await getVm(rig.clients, 'in')).inlineImage?.key;
        atPublish = { key, onS3: key ? await onS3(key) : true };
      }
      return undefined;
    };
    const [a, b] = [anAgent('i1', look), anAgent('i2', beforePublish)];
    const before = await ordered('in', a, b);
    await cycle([a, b], 1);
    const moved = await settledOn('in', b);
    // At the hand-over the item held the final image's one object, and S3 did not have it until the
    // target published it.
    const final = atHandOver!.vm.image!;
    expect(atHandOver!.vm.inlineImage?.key).toBe(final.manifest);
    expect(atHandOver!.vm.inlineImage?.body.byteLength).toBeGreaterThan(0);
    expect(atHandOver!.vm.inlineImage?.body.byteLength).toBeLessThanOrEqual(INLINE_IMAGE_BYTES);
    expect(atPublish).toEqual({ key: final.manifest, onS3: false });
    expect(handOvers.find((h) => h.vm === 'in')?.phases).toMatchObject({ uploadMs: 0 });
    // The target applied it to its copy from the item, ran exactly that state, and published it.
    expect(arrivals.find((x) => x.vm === 'in')?.phases).toMatchObject({ path: 'apply', inline: true });
    expect(moved).toMatchObject({ fence: before.fence + 1, image: final });
    expect(await onS3(final.manifest)).toBe(true);
    // The next image builds on it, and a whole load of that one reads the published object.
    await cycle([a, b], 4);
    const later = await getVm(rig.clients, 'in');
    expect(later.image!.seq).toBeGreaterThan(final.seq);
    expect(await onS3(later.image!.manifest)).toBe(true);
  });

  it('loses nothing when the source crashes right after the hand-over', async () => {
    const [a, b] = [anAgent('s1', crashOnceBefore('stopSource')), anAgent('s2')];
    const before = await ordered('sc', a, b);
    await cycle([a, b], 1);
    const moved = await settledOn('sc', b);
    expect(a.status()).toBe('crashed');
    expect(moved.fence).toBe(before.fence + 1);
    expect(b.kernel.digest('sc')).toBe(moved.image!.digest);
    expect(await onS3(moved.image!.manifest)).toBe(true);
  });

  it('loads from the item when the target crashes after the hand-over, before the take', async () => {
    const [a, b] = [anAgent('t1'), anAgent('t2', crashOnceBefore('takeOwnership'))];
    const before = await ordered('tk', a, b);
    await cycle([a, b], 1);
    const handed = await handedOver('tk');
    await until(async () => (b.status() === 'crashed' ? true : undefined));
    expect(handed.inlineImage?.key).toBe(handed.image!.manifest);
    expect(await onS3(handed.image!.manifest)).toBe(false);
    // The next process has no copy: it publishes the item's image, loads it whole and takes the VM.
    const b2 = await restart('t2', [a]);
    const moved = await settledOn('tk', b2);
    expect(moved).toMatchObject({ fence: before.fence + 1, image: handed.image });
    expect(b2.kernel.digest('tk')).toBe(handed.image!.digest);
    expect(await onS3(handed.image!.manifest)).toBe(true);
  });

  it('restarts from the item when the target crashes after the take, before it published the final delta', async () => {
    const [a, b] = [anAgent('p1'), anAgent('p2', crashOnceBefore('publishInline'))];
    const before = await ordered('pb', a, b);
    await cycle([a, b], 1);
    const taken = await until(async () => {
      const vm = await getVm(rig.clients, 'pb');
      return vm.owner === 'p2' && b.status() === 'crashed' ? vm : undefined;
    });
    // Owned by the dead target under the new fence: only the item holds the final delta.
    expect(taken).toMatchObject({ state: 'RUNNING', fence: before.fence + 1 });
    expect(taken.inlineImage?.key).toBe(taken.image!.manifest);
    expect(await onS3(taken.image!.manifest)).toBe(false);
    const b2 = await restart('p2', [a]);
    const moved = await settledOn('pb', b2);
    // Restarted under a newer fence from exactly the final image, which is on S3 now.
    expect(moved.fence).toBe(before.fence + 2);
    expect(moved.image?.manifest).toBe(taken.image!.manifest);
    expect(await onS3(taken.image!.manifest)).toBe(true);
  });

  it('publishes again harmlessly when the target crashes between the publish and the drop', async () => {
    const [a, b] = [anAgent('d1'), anAgent('d2', crashOnceBefore('dropInline'))];
    await ordered('dr', a, b);
    await cycle([a, b], 1);
    const taken = await until(async () => {
      const vm = await getVm(rig.clients, 'dr');
      return vm.owner === 'd2' && b.status() === 'crashed' ? vm : undefined;
    });
    expect(taken.inlineImage?.key).toBe(taken.image!.manifest);
    expect(await onS3(taken.image!.manifest)).toBe(true);
    const b2 = await restart('d2', [a]);
    const moved = await settledOn('dr', b2);
    expect(moved.image?.manifest).toBe(taken.image!.manifest);
  });

  it('publishes the held delta at once when the hand-over fails, so the resumed guest builds on S3', async () => {
    // The order is aborted under the source's feet, between its stop and its hand-over.
    const abortFirst: FaultHook = async (point, ctx) => {
      if (point === 'markImageReady' && ctx.phase === 'before')
        await abortMigration(rig.clients, 'ab', 'ab-m', rig.now);
      return undefined;
    };
    let held: string | undefined;
    const watchHeld = (kernel: Kernel) => {
      const checkpoint = kernel.checkpoint.bind(kernel);
      kernel.checkpoint = async (id, mode, options) => {
        const out = await checkpoint(id, mode, options);
        if (out.held) held = out.held.key;
        return out;
      };
    };
    const [a, b] = [anAgent('a1', abortFirst, watchHeld), anAgent('a2')];
    const before = await ordered('ab', a, b);
    await cycle([a, b], 1);
    await until(async () => (held ? true : undefined));
    await cycle([a, b], 6);
    const vm = await getVm(rig.clients, 'ab');
    expect(vm).toMatchObject({ owner: 'a1', state: 'RUNNING', fence: before.fence });
    expect(vm.migration).toBeUndefined();
    expect(vm.inlineImage).toBeUndefined();
    expect(a.kernel.running()).toEqual(['ab']);
    expect(await onS3(held!)).toBe(true);
    // The checkpoints after it build on the held delta and load whole from S3.
    expect(vm.image!.seq).toBeGreaterThan(Number(held!.split('/')[3]));
    expect(await onS3(vm.image!.manifest)).toBe(true);
  });

  it('hands over through S3 when the final delta does not fit in the item', async () => {
    const [a, b] = [anAgent('l1'), anAgent('l2')];
    await ordered('lg', a, b);
    // An item already near DynamoDB's 400 KB (about 1.5 KB of room, less than the coded final delta
    // of about 3 KB): the write with the delta inline is refused.
    await rig.clients.doc.send(
      new UpdateCommand({
        TableName: rig.clients.tableName,
        Key: vmKey('lg'),
        UpdateExpression: 'SET padding = :p',
        ExpressionAttributeValues: { ':p': new Uint8Array(408_000) },
      }),
    );
    await cycle([a, b], 1);
    const moved = await settledOn('lg', b);
    expect(moved.inlineImage).toBeUndefined();
    expect(await onS3(moved.image!.manifest)).toBe(true);
    expect(handOvers.find((h) => h.vm === 'lg')?.phases.inlineBytes).toBe(0);
    expect(b.kernel.digest('lg')).toBe(moved.image!.digest);
  });

  /** A source kernel whose held final delta is `spoil`ed before it goes in the item (a buggy peer). */
  const buggySource =
    (spoil: (body: Uint8Array) => Uint8Array, before?: (id: string, key: string) => Promise<void>) =>
    (kernel: Kernel) => {
      const checkpoint = kernel.checkpoint.bind(kernel);
      kernel.checkpoint = async (id, mode, options) => {
        const out = await checkpoint(id, mode, options);
        if (!out.held) return out;
        await before?.(id, out.held.key);
        return { ...out, held: { key: out.held.key, body: spoil(out.held.body) } };
      };
    };

  it('restores the older image, recorded, when the inline final delta is corrupt; the target keeps running', async () => {
    const flip = (body: Uint8Array) => {
      const copy = new Uint8Array(body);
      copy[copy.byteLength - 1]! ^= 0xff;
      return copy;
    };
    // The key of the spoiled object, taken as it is spoiled: the hand-over's IMAGE_READY phase may
    // be gone (the target took the VM) before a poll of the item would see it.
    let spoiled: string | undefined;
    const noteKey = async (_id: string, key: string) => {
      spoiled = key;
    };
    const [a, b] = [anAgent('c1', undefined, buggySource(flip, noteKey)), anAgent('c2')];
    await ordered('cx', a, b);
    await cycle([a, b], 1);
    const vm = await pollUntil(
      async () => {
        const v = await getVm(rig.clients, 'cx');
        return v.state === 'RUNNING' && v.recovery ? v : undefined;
      },
      20_000,
      () => cycle([a, b], 1),
    );
    expect(spoiled).toBeDefined();
    expect(vm.recovery).toMatchObject({ broken: spoiled });
    expect(vm.recovery!.why).toMatch(/sha256|does not decode|missing/);
    expect(b.status()).not.toBe('crashed');
    expect(warnings.some((w) => w.includes('final image not applied'))).toBe(true);
  });

  it('fails the VM with the reason when an oversized inline image leaves no image to restore', async () => {
    const huge = () => new Uint8Array(INLINE_IMAGE_BYTES + 1);
    // The peer also lost every older image: nothing can be restored.
    const dropImages = async (id: string) => void (await rig.images.deleteVmImages(id));
    const [a, b] = [anAgent('o1', undefined, buggySource(huge, dropImages)), anAgent('o2')];
    await ordered('ov', a, b);
    await cycle([a, b], 1);
    const vm = await pollUntil(
      async () => {
        const v = await getVm(rig.clients, 'ov');
        return v.state === 'FAILED' ? v : undefined;
      },
      20_000,
      () => cycle([a, b], 1),
    );
    expect(vm.reason).toMatch(/no usable image/);
    expect(warnings.some((w) => w.includes('inline image ignored') && w.includes('bytes (at most'))).toBe(
      true,
    );
    expect(b.status()).not.toBe('crashed');
  });
});
