// Key shapes for the single table live here and nowhere else.

export type Kind =
  | 'NODE'
  | 'VM'
  | 'CONFIG'
  | 'RUN'
  | 'MIGRATION'
  | 'MODULE'
  | 'IDEMPOTENCY'
  | 'LEARN'
  | 'PLAN';

export const nodeKey = (id: string) => ({ pk: `NODE#${id}`, sk: 'NODE' });
export const vmKey = (id: string) => ({ pk: `VM#${id}`, sk: 'VM' });
export const configKey = (name: string) => ({ pk: `CONFIG#${name}`, sk: 'CONFIG' });
export const runKey = (id: string) => ({ pk: `RUN#${id}`, sk: 'RUN' });
export const migrationKey = (id: string) => ({ pk: `MIGRATION#${id}`, sk: 'MIGRATION' });
export const moduleKey = (name: string) => ({ pk: `MODULE#${name}`, sk: 'MODULE' });
/** What one balancer run learned (exchanges to judge, penalties, its CV), read back by later runs. */
export const learnKey = (run: string) => ({ pk: `LEARN#${run}`, sk: 'LEARN' });
/** A dry run's reviewed plan, applied at most once. */
export const planKey = (id: string) => ({ pk: `PLAN#${id}`, sk: 'PLAN' });
export const idempotencyKey = (key: string) => ({ pk: `IDEMPOTENCY#${key}`, sk: 'IDEMPOTENCY' });

/** GSI attributes that put a VM in its owner's partition of the byOwner index. */
export const ownerIndexKey = (node: string, vm: string) => ({ gsi1pk: `OWNER#${node}`, gsi1sk: `VM#${vm}` });

/** GSI attributes that list an item under its kind; `order` sorts within the kind (id or time). */
export const kindIndexKey = (kind: Kind, order: string) => ({ kind, gsi2sk: order });
