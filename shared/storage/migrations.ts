// Migration history: one item per finished (or abandoned) migration, listed newest first through
// the byKind index. Written by whoever ends the migration: the target after it runs the VM, or
// the node or reaper that aborted or settled the order.
import type { MigrationOrder } from '../domain/vm-state.ts';
import type { Clients } from './clients.ts';
import { ConditionFailed, InvalidInput } from './errors.ts';
import { kindIndexKey, migrationKey } from './keys.ts';
import { getItem, kindPage, type Page, putItem } from './table.ts';

/** completed: the target runs it; aborted: the source kept it; settled: restarted from the final image after a deadline. */
export type MigrationOutcome = 'completed' | 'aborted' | 'settled';

export interface MigrationRecord {
  id: string;
  vm: string;
  from: string;
  to: string;
  origin: string;
  orderedAt: number;
  /** When the source stopped the guest (source clock). */
  stoppedAt?: number;
  /** When the guest ran again on the target (target clock). */
  runningAt?: number;
  /** When the record was written: the end of the migration, whatever its outcome. */
  endedAt: number;
  bytes?: { precopy: number; final: number };
  /** Guest stopped on the source → running on the target. */
  downtimeMs?: number;
  /** Order → running on the target (or → the end, for other outcomes). */
  totalMs: number;
  outcome: MigrationOutcome;
  /** For a settled order: where the VM restarted. */
  settledOn?: string;
  /** Who wrote the record (a node id or `reaper`). */
  by: string;
  /** For an aborted order: why (see abortReason). */
  reason?: string;
}

/** Sort key that orders records by end time, then id; listed in reverse for newest first. */
const timeKey = (endedAt: number, id: string) =>
  `${String(Math.max(0, Math.floor(endedAt))).padStart(15, '0')}#${id}`;

/** Builds the record of a migration from its order and how it ended. */
export function migrationRecord(
  order: MigrationOrder,
  vm: string,
  end: {
    outcome: MigrationOutcome;
    endedAt: number;
    by: string;
    runningAt?: number;
    settledOn?: string;
    bytes?: { precopy: number; final: number };
    stoppedAt?: number;
    reason?: string;
  },
): MigrationRecord {
  const stoppedAt = end.stoppedAt ?? order.stoppedAt;
  const bytes = end.bytes ?? order.bytes;
  const record: MigrationRecord = {
    id: order.id,
    vm,
    from: order.from,
    to: order.to,
    origin: order.origin,
    orderedAt: order.orderedAt,
    endedAt: end.endedAt,
    totalMs: Math.max(0, (end.runningAt ?? end.endedAt) - order.orderedAt),
    outcome: end.outcome,
    by: end.by,
  };
  if (stoppedAt !== undefined) record.stoppedAt = stoppedAt;
  if (bytes) record.bytes = bytes;
  if (end.runningAt !== undefined) {
    record.runningAt = end.runningAt;
    if (stoppedAt !== undefined) record.downtimeMs = Math.max(0, end.runningAt - stoppedAt);
  }
  if (end.settledOn) record.settledOn = end.settledOn;
  if (end.reason) record.reason = end.reason;
  return record;
}

/** Writes a history record once; a second write of the same migration is ignored (returns false). */
export async function putMigration(clients: Clients, record: MigrationRecord): Promise<boolean> {
  try {
    await putItem(clients, 'putMigration', {
      Item: {
        ...migrationKey(record.id),
        ...kindIndexKey('MIGRATION', timeKey(record.endedAt, record.id)),
        ...record,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    return true;
  } catch (error) {
    if (error instanceof ConditionFailed) return false;
    throw error;
  }
}

export async function getMigration(clients: Clients, id: string): Promise<MigrationRecord | undefined> {
  const item = await getItem<MigrationRecord & Record<string, unknown>>(clients, migrationKey(id));
  return item ? stripKeys(item) : undefined;
}

/** One page of migration history, newest first; `vm` filters to one VM's migrations. */
export async function listMigrations(
  clients: Clients,
  options: { limit: number; cursor?: string; vm?: string },
): Promise<Page<MigrationRecord>> {
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > 1000)
    throw new InvalidInput('limit must be an integer from 1 to 1000');
  const { vm } = options;
  const page = await kindPage<MigrationRecord & Record<string, unknown>>(clients, 'MIGRATION', {
    limit: options.limit,
    cursor: options.cursor,
    ...(vm ? { filter: { expression: '#vm = :vm', names: { '#vm': 'vm' }, values: { ':vm': vm } } } : {}),
  });
  return { ...page, items: page.items.map(stripKeys) };
}

function stripKeys(item: MigrationRecord & Record<string, unknown>): MigrationRecord {
  const { pk: _pk, sk: _sk, kind: _kind, gsi2sk: _gsi2sk, ...record } = item;
  return record as MigrationRecord;
}
