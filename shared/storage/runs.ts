// Balancer run records (what each run saw, decided and wrote) and the compact learning items that
// later runs read back. Both are listed newest first through the byKind index under a time-sortable
// sort key, and expire through TTL.
import type { ConvergenceEstimate, ExchangeOutcome, ExchangeRecord, Penalty } from '../domain/learning.ts';
import type { TriggerChoice } from '../domain/trigger.ts';
import type { BalancingConfig, Imbalance, PairDecision, Reason } from '../domain/types.ts';
import type { Clients } from './clients.ts';
import { NotFound } from './errors.ts';
import { kindIndexKey, learnKey, runKey } from './keys.ts';
import { TABLE } from './schema.ts';
import { getItem, kindPage, type Page, putItem, queryAll, type Usage } from './table.ts';

/** What happened to one move the run decided. */
export interface RunOrder {
  vm: string;
  from: string;
  to: string;
  /** The migration order id written on the VM item. */
  migration: string;
  /**
   * `written`; `lost`: the VM changed under us (fence, owner, state); `unclaimed`: a node of the pair
   * was booked by another run; `failed`: a store error; `dry-run`: decided, not written.
   */
  outcome: 'written' | 'lost' | 'unclaimed' | 'failed' | 'dry-run';
  detail?: string;
  /** The fence the VM ran under when the run read it (dry runs keep it for their plan). */
  fence?: number;
}

export interface RunRecord {
  id: string;
  at: number;
  shard: number;
  shards: number;
  round: number;
  dryRun: boolean;
  config: BalancingConfig;
  nodes: { read: number; inShard: number; considered: number };
  /** Every pair the round formed, with its moves and reason (trimmed in very large runs; see `omitted`). */
  pairs: PairDecision[];
  /** Pairs per reason code, over all pairs (also those trimmed). */
  reasons: Partial<Record<Reason['code'], number>>;
  /** Pairs with at least one order written (in a dry run: pairs with moves). */
  exchanges: number;
  orders: RunOrder[];
  ordersWritten: number;
  /** Orders decided but not written: lost, unclaimed or failed. */
  ordersLost: number;
  skipped: { node: string; reason: string }[];
  before: Imbalance;
  /** Expected once the written orders complete. */
  after: Imbalance;
  usage: Usage;
  learning: {
    /** Earlier exchanges judged by this run. */
    evaluated: ExchangeOutcome[];
    /** Penalties this run learned. */
    penalties: Penalty[];
    /** Penalties in force when it decided. */
    active: number;
    /** Pairs whose moves a learned threshold held back. */
    heldBack: string[];
  };
  convergence: ConvergenceEstimate;
  /** The trigger the round used, and the spread and noise the auto trigger measured to choose it. */
  trigger?: TriggerChoice;
  decideMs: number;
  durationMs: number;
  /**
   * Wall time of each step of the run: store reads, building the domain's input, learning, decideRound
   * (with held-back pairs), writing orders, building this record.
   */
  phasesMs?: {
    readMs: number;
    inputMs: number;
    learnMs: number;
    decideMs: number;
    writeMs: number;
    recordMs: number;
  };
  /** CPU time (user + system) of the process from the run's start to its record built. */
  cpuMs?: number;
  /** CPU time of each step, as `phasesMs` (steadier than wall time on a shared machine). */
  phasesCpuMs?: NonNullable<RunRecord['phasesMs']>;
  /** Entries left out of the stored record to keep it under the item size limit. */
  omitted?: { pairs: number; orders: number; skipped: number };
}

/** What a run keeps for later runs: exchanges to judge, judgements made, penalties, its CV. */
export interface LearnRecord {
  run: string;
  at: number;
  round: number;
  shard: number;
  cv: number;
  exchanges: ExchangeRecord[];
  evaluated: string[];
  penalties: Penalty[];
  /**
   * Loads of the nodes this run left untouched (no move decided), for the next run's auto trigger
   * to measure noise against (`RoundInput.expected`); at most EXPECTED_NODES of them.
   */
  expected?: Record<string, number>;
}

/** A learning item holds at most this many nodes' expected loads (it must fit in one item). */
export const EXPECTED_NODES = 2000;

const DAY_MS = 86_400_000;
/** DynamoDB's item limit is 400 KB; stay well clear of it. */
const MAX_RECORD_BYTES = 300_000;

/** Sort key that orders by time (fixed-width ms), then id. */
const timeOrder = (at: number, id: string) =>
  `${String(Math.max(0, Math.floor(at))).padStart(15, '0')}#${id}`;

const STORAGE_FIELDS = ['pk', 'sk', 'kind', 'gsi2sk', 'expiresAt'] as const;
function strip<T>(item: Record<string, unknown>): T {
  const out = { ...item };
  for (const field of STORAGE_FIELDS) delete out[field];
  return out as T;
}

const byteSize = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** Trims the lists of a record (pairs without moves first) until it fits in one item. */
export function fitRunRecord(record: RunRecord, maxBytes = MAX_RECORD_BYTES): RunRecord {
  if (byteSize(record) <= maxBytes) return record;
  const halve = <T>(list: T[]) => list.slice(0, list.length >> 1);
  let moving = record.pairs.filter((p) => p.moves.length > 0);
  let idle = record.pairs.filter((p) => p.moves.length === 0);
  let skipped = record.skipped;
  let orders = record.orders;
  const build = (): RunRecord => ({ ...record, pairs: [...moving, ...idle], skipped, orders });
  while (byteSize(build()) > maxBytes) {
    if (idle.length > 0) idle = halve(idle);
    else if (skipped.length > 0) skipped = halve(skipped);
    else if (moving.length > 0) moving = halve(moving);
    else if (orders.length > 0) orders = halve(orders);
    else break;
  }
  return {
    ...build(),
    omitted: {
      pairs: record.pairs.length - moving.length - idle.length,
      orders: record.orders.length - orders.length,
      skipped: record.skipped.length - skipped.length,
    },
  };
}

/** Stores a run record (trimmed to fit one item); it expires after `retentionMs` (7 days by default). */
export async function putRun(
  clients: Clients,
  record: RunRecord,
  retentionMs = 7 * DAY_MS,
): Promise<RunRecord> {
  const stored = fitRunRecord(record);
  await putItem(clients, 'putRun', {
    Item: {
      ...runKey(record.id),
      ...kindIndexKey('RUN', timeOrder(record.at, record.id)),
      expiresAt: Math.floor((record.at + retentionMs) / 1000),
      ...stored,
    },
    ConditionExpression: 'attribute_not_exists(pk)',
  });
  return stored;
}

export async function getRun(clients: Clients, id: string): Promise<RunRecord> {
  const item = await getItem<Record<string, unknown>>(clients, runKey(id));
  if (!item) throw new NotFound('run', id);
  return strip<RunRecord>(item);
}

/** One page of run records, newest first. */
export async function listRuns(
  clients: Clients,
  options: { limit?: number; cursor?: string } = {},
): Promise<Page<RunRecord>> {
  const page = await kindPage<Record<string, unknown>>(clients, 'RUN', {
    limit: options.limit ?? 20,
    cursor: options.cursor,
  });
  return { ...page, items: page.items.map((item) => strip<RunRecord>(item)) };
}

/** Stores what a run learned; it expires once it has left every later run's window. */
export async function putLearning(clients: Clients, record: LearnRecord, windowMs: number): Promise<void> {
  await putItem(clients, 'putLearning', {
    Item: {
      ...learnKey(record.run),
      ...kindIndexKey('LEARN', timeOrder(record.at, record.run)),
      expiresAt: Math.floor((record.at + 2 * windowMs) / 1000),
      ...record,
    },
  });
}

/** The learning items of runs at or after `since`, oldest first (TTL deletes lazily, so filter by time). */
export async function listLearningSince(clients: Clients, since: number): Promise<LearnRecord[]> {
  const index = TABLE.indexes.byKind;
  const items = await queryAll<Record<string, unknown>>(clients, {
    IndexName: index.name,
    KeyConditionExpression: '#k = :k AND #s >= :since',
    ExpressionAttributeNames: { '#k': index.partitionKey, '#s': index.sortKey },
    ExpressionAttributeValues: { ':k': 'LEARN', ':since': timeOrder(since, '') },
  });
  return items.map((item) => strip<LearnRecord>(item));
}
