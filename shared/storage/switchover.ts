// The event-driven switchover's table access: the source's hint that a VM is coming (filed beside
// the VMs the target owns, so the target's one reconcile query finds it), the source's note that
// pre-copy is done, and the target's note that it is restored and waiting. The two notes are
// conditional writes on the VM item's fence and order; the hint is no state at all, only a way to
// be told early, and it expires by TTL.
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { ImageRef } from '../domain/vm-state.ts';
import type { Clients } from './clients.ts';
import { ConditionFailed } from './errors.ts';
import type { HeldObject } from './image-store.ts';
import { inboundIndexKey, inboundKey, ownerIndexKey, vmKey } from './keys.ts';
import { TABLE } from './schema.ts';
import { putItem, queryAll, updateItem } from './table.ts';
import type { VmRecord } from './vms.ts';

/**
 * The largest final delta carried inside the VM item (`markImageReady`'s inline object). An item
 * may hold 400 KB; the rest of a VM item is a few KB, so this leaves room to spare, and a final
 * delta above it (a hot guest's memory) goes through S3 as before.
 */
export const INLINE_IMAGE_BYTES = 160 * 1024;

/** A source's word to a target that a VM is on its way. */
export interface InboundHint {
  vm: string;
  migration: string;
  from: string;
  to: string;
}

/** Files the hint under the target (once; a repeat is a no-op); gone by TTL after `expiresAt` (epoch ms). */
export async function hintInbound(clients: Clients, hint: InboundHint, expiresAt: number): Promise<void> {
  try {
    await putItem(clients, 'hintInbound', {
      Item: {
        ...inboundKey(hint.vm, hint.migration),
        ...inboundIndexKey(hint.to, hint.vm),
        ...hint,
        [TABLE.ttlAttribute]: Math.ceil(expiresAt / 1000),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
  }
}

/** Removes a hint that served its purpose (or outlived its order). */
export async function dropInbound(clients: Clients, vm: string, migration: string): Promise<void> {
  await clients.doc.send(new DeleteCommand({ TableName: clients.tableName, Key: inboundKey(vm, migration) }));
}

/** One query for a node's work: the VMs filed under it and the migrations hinted to it. */
export async function listNodeWork(
  clients: Clients,
  node: string,
): Promise<{ vms: VmRecord[]; inbound: InboundHint[] }> {
  const index = TABLE.indexes.byOwner;
  const items = await queryAll<Record<string, unknown>>(clients, {
    IndexName: index.name,
    KeyConditionExpression: '#p = :p',
    ExpressionAttributeNames: { '#p': index.partitionKey },
    ExpressionAttributeValues: { ':p': ownerIndexKey(node, '').gsi1pk },
  });
  const vms: VmRecord[] = [];
  const inbound: InboundHint[] = [];
  for (const item of items) {
    const sort = String(item[index.sortKey] ?? '');
    if (sort.startsWith('VM#')) vms.push(item as unknown as VmRecord);
    else if (sort.startsWith('INBOUND#')) {
      const { vm, migration, from, to } = item as unknown as InboundHint;
      inbound.push({ vm, migration, from, to });
    }
  }
  return { vms, inbound };
}

/**
 * The source finished pre-copying a VM it still runs under `fence`: the target may restore from
 * `image` (recorded as the VM's image when newer) and wait for the final delta.
 */
export function announcePrecopy(
  clients: Clients,
  at: { id: string; migration: string; node: string; fence: number; image?: ImageRef; now: number },
) {
  const image = at.image;
  return updateItem<VmRecord>(clients, 'announcePrecopy', {
    Key: vmKey(at.id),
    UpdateExpression: `SET migration.precopiedAt = :now, updatedAt = :now${image ? ', image = :img, digest = :d' : ''}`,
    ConditionExpression:
      '#owner = :n AND fence = :f AND #state = :running AND migration.id = :m AND migration.phase = :ordered' +
      (image ? ' AND (attribute_not_exists(image) OR image.seq < :seq)' : ''),
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    ExpressionAttributeValues: {
      ':n': at.node,
      ':f': at.fence,
      ':running': 'RUNNING',
      ':m': at.migration,
      ':ordered': 'ORDERED',
      ':now': at.now,
      ...(image ? { ':img': image, ':d': image.digest, ':seq': image.seq } : {}),
    },
  });
}

/** The target restored the VM from the pre-copy and waits for the final delta: the source may stop it. */
export function markTargetReady(
  clients: Clients,
  at: { id: string; migration: string; node: string; fence: number; now: number },
) {
  return updateItem<VmRecord>(clients, 'markTargetReady', {
    Key: vmKey(at.id),
    UpdateExpression: 'SET migration.targetReadyAt = :now',
    ConditionExpression:
      'fence = :f AND migration.id = :m AND migration.phase = :ordered AND migration.#to = :n',
    ExpressionAttributeNames: { '#to': 'to' },
    ExpressionAttributeValues: {
      ':n': at.node,
      ':f': at.fence,
      ':m': at.migration,
      ':ordered': 'ORDERED',
      ':now': at.now,
    },
  });
}

/**
 * The item's inline image when it is well formed (an image key of this VM, at most
 * INLINE_IMAGE_BYTES of binary); undefined when there is none. A malformed one (a buggy peer's) is
 * `malformed`: nobody may publish or use it, and the VM's image then fails to load like any broken
 * image (see docs/protocol.md).
 */
export function inlineImageOf(vm: VmRecord): { held?: HeldObject; malformed?: string } {
  const raw = vm.inlineImage as unknown;
  if (raw === undefined || raw === null) return {};
  const { key, body } = raw as Partial<HeldObject>;
  if (typeof key !== 'string' || !key.startsWith(`images/${vm.id}/`) || !key.endsWith('/manifest.json'))
    return { malformed: `the inline image's key ${String(key).slice(0, 80)} is not an image of ${vm.id}` };
  if (!(body instanceof Uint8Array)) return { malformed: `the inline image ${key} is not binary` };
  if (body.byteLength === 0 || body.byteLength > INLINE_IMAGE_BYTES)
    return {
      malformed: `the inline image ${key} is ${body.byteLength} bytes (at most ${INLINE_IMAGE_BYTES})`,
    };
  return { held: { key, body } };
}

/**
 * Drops the item's inline image once its object is on S3 (the caller published it). Not a state
 * change of the VM, only a copy removed: the condition is that the item still holds this very
 * image (keys are written once), whoever owns the VM by now.
 */
export async function dropInlineImage(clients: Clients, id: string, key: string): Promise<void> {
  try {
    await updateItem<VmRecord>(clients, 'dropInlineImage', {
      Key: vmKey(id),
      UpdateExpression: 'REMOVE inlineImage',
      ConditionExpression: 'inlineImage.#key = :k',
      ExpressionAttributeNames: { '#key': 'key' },
      ExpressionAttributeValues: { ':k': key },
    });
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
  }
}
