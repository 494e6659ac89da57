// Bulk loading for benches and load tests: node items (with their reports) and the RUNNING VM items
// they report, written in batches without conditions. Never used on a live cluster's path.
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { bucketOf, groupOf } from '../domain/shards.ts';
import { eachLimited } from '../runtime/pool.ts';
import type { Clients } from './clients.ts';
import { bucketIndexKey, kindIndexKey, nodeKey, ownerIndexKey, vmKey } from './keys.ts';
import type { NodeRecord } from './nodes.ts';

/** The node item as registerNode files it: table key, kind and bucket index keys, then the record. */
function nodeItem(record: NodeRecord): Record<string, unknown> {
  return {
    ...nodeKey(record.id),
    ...kindIndexKey('NODE', record.id),
    ...bucketIndexKey(groupOf(bucketOf(record.id)), bucketOf(record.id), record.id),
    ...record,
  };
}

function vmItems(record: NodeRecord, now: number): Record<string, unknown>[] {
  return Object.entries(record.report?.vms ?? {}).map(([id, vm]) => ({
    ...vmKey(id),
    ...ownerIndexKey(record.id, id),
    ...kindIndexKey('VM', id),
    id,
    owner: record.id,
    state: 'RUNNING',
    fence: vm.fence,
    guest: { kind: 'cpu' },
    memPages: vm.memPages,
    pinned: vm.pinned,
    moves: 0,
    createdAt: now,
    updatedAt: now,
  }));
}

/** Writes the node items and their reported VMs as RUNNING VM items, 25 to a batch, 8 batches at once. */
export async function seedCluster(
  clients: Clients,
  records: readonly NodeRecord[],
  now: number,
): Promise<void> {
  const items = records.flatMap((record) => [nodeItem(record), ...vmItems(record, now)]);
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < items.length; i += 25) batches.push(items.slice(i, i + 25));
  await eachLimited(batches, 8, async (batch) => {
    let pending: Record<string, unknown[]> | undefined = {
      [clients.tableName]: batch.map((Item) => ({ PutRequest: { Item } })),
    };
    while (pending && Object.keys(pending).length > 0) {
      const out = await clients.doc.send(new BatchWriteCommand({ RequestItems: pending as never }));
      pending = out.UnprocessedItems as Record<string, unknown[]> | undefined;
    }
  });
}
