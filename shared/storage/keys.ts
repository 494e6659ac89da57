// Key shapes for the single table live here and nowhere else.

export type Kind =
  | 'NODE'
  | 'VM'
  | 'CONFIG'
  | 'RUN'
  | 'MIGRATION'
  | 'MODULE'
  | 'IMAGE'
  | 'IDEMPOTENCY'
  | 'LEARN'
  | 'PLAN';

export const nodeKey = (id: string) => ({ pk: `NODE#${id}`, sk: 'NODE' });
export const vmKey = (id: string) => ({ pk: `VM#${id}`, sk: 'VM' });
export const configKey = (name: string) => ({ pk: `CONFIG#${name}`, sk: 'CONFIG' });
export const runKey = (id: string) => ({ pk: `RUN#${id}`, sk: 'RUN' });
export const migrationKey = (id: string) => ({ pk: `MIGRATION#${id}`, sk: 'MIGRATION' });
export const moduleKey = (name: string) => ({ pk: `MODULE#${name}`, sk: 'MODULE' });
/** A registered qemu image (its files are in the bucket under user-images/<name>/). */
export const imageKey = (name: string) => ({ pk: `IMAGE#${name}`, sk: 'IMAGE' });
/** What one balancer run learned (exchanges to judge, penalties, its CV), read back by later runs. */
export const learnKey = (run: string) => ({ pk: `LEARN#${run}`, sk: 'LEARN' });
/** A dry run's reviewed plan, applied at most once. */
export const planKey = (id: string) => ({ pk: `PLAN#${id}`, sk: 'PLAN' });
export const idempotencyKey = (key: string) => ({ pk: `IDEMPOTENCY#${key}`, sk: 'IDEMPOTENCY' });

/** GSI attributes that put a VM in its owner's partition of the byOwner index. */
export const ownerIndexKey = (node: string, vm: string) => ({ gsi1pk: `OWNER#${node}`, gsi1sk: `VM#${vm}` });

/**
 * GSI attributes that file a node under its stable bucket in the byBucket index (see
 * shared/domain/shards.ts): one partition per group of buckets, sorted by bucket then node id.
 */
export const bucketIndexKey = (group: number, bucket: number, node: string) => ({
  gsi3pk: `BUCKETS#${String(group).padStart(2, '0')}`,
  gsi3sk: `${bucketPrefix(bucket)}${node}`,
});
/** The sort-key prefix of one bucket's nodes within its group's partition. */
export const bucketPrefix = (bucket: number) => `${String(bucket).padStart(4, '0')}#`;

/** GSI attributes that list an item under its kind; `order` sorts within the kind (id or time). */
export const kindIndexKey = (kind: Kind, order: string) => ({ kind, gsi2sk: order });

/** A source's hint to the target of a migration, kept in the VM's partition. */
export const inboundKey = (vm: string, migration: string) => ({ pk: `VM#${vm}`, sk: `INBOUND#${migration}` });
/** GSI attributes that file an inbound hint beside the VMs the target owns (listed by the same query). */
export const inboundIndexKey = (node: string, vm: string) => ({
  gsi1pk: `OWNER#${node}`,
  gsi1sk: `INBOUND#${vm}`,
});
