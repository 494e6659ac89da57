// Thin helpers over the DocumentClient shared by the repositories: conditional writes that
// turn a failed guard into ConditionFailed, and paginated index queries.
import {
  DeleteCommand,
  type DeleteCommandInput,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import type { Clients } from './clients.ts';
import { ConditionFailed, InvalidInput, isConditionalCheckFailure } from './errors.ts';
import type { Kind } from './keys.ts';
import { KEY_ATTRIBUTES, TABLE } from './schema.ts';

type Key = { pk: string; sk: string };

/** Reads one item strongly consistently; undefined when absent. */
export async function getItem<T>(clients: Clients, key: Key): Promise<T | undefined> {
  const out = await clients.doc.send(
    new GetCommand({ TableName: clients.tableName, Key: key, ConsistentRead: true }),
  );
  return out.Item as T | undefined;
}

/** Runs a conditional write; a failed condition becomes ConditionFailed(transition). */
async function guarded<T>(transition: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isConditionalCheckFailure(error)) throw new ConditionFailed(transition);
    throw error;
  }
}

/** A conditional put; a failed condition becomes ConditionFailed(transition). */
export async function putItem(
  clients: Clients,
  transition: string,
  input: Omit<PutCommandInput, 'TableName'>,
): Promise<void> {
  await guarded(transition, () =>
    clients.doc.send(new PutCommand({ TableName: clients.tableName, ...input })),
  );
}

/** Deletes one item, only while `condition` (if given) holds; a failed one becomes ConditionFailed(transition). */
export async function deleteItem(
  clients: Clients,
  transition: string,
  key: Key,
  condition?: Pick<
    DeleteCommandInput,
    'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'
  >,
): Promise<void> {
  const command = new DeleteCommand({ TableName: clients.tableName, Key: key, ...condition });
  await guarded(transition, () => clients.doc.send(command));
}

/** A conditional update returning the new item; a failed condition becomes ConditionFailed(transition). */
export async function updateItem<T>(
  clients: Clients,
  transition: string,
  input: Omit<UpdateCommandInput, 'TableName' | 'ReturnValues'>,
): Promise<T> {
  const out = await guarded(transition, () =>
    clients.doc.send(new UpdateCommand({ TableName: clients.tableName, ReturnValues: 'ALL_NEW', ...input })),
  );
  return out.Attributes as T;
}

/**
 * As updateItem, returning nothing: for writes whose caller does not read the item back, where the
 * item may be large (a final delta carried in it) and echoing it costs the store and the client.
 */
export async function updateItemOnly(
  clients: Clients,
  transition: string,
  input: Omit<UpdateCommandInput, 'TableName' | 'ReturnValues'>,
): Promise<void> {
  await guarded(transition, () =>
    clients.doc.send(new UpdateCommand({ TableName: clients.tableName, ReturnValues: 'NONE', ...input })),
  );
}

export interface Page<T> {
  items: T[];
  /** Opaque cursor for the next page; absent on the last page. */
  next?: string;
}

export const encodeCursor = (key: Record<string, unknown> | undefined) =>
  key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;

export function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (!cursor) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    // A cursor is a start key: the table's and an index's key attributes, each a string.
    if (
      parsed &&
      typeof parsed === 'object' &&
      !Array.isArray(parsed) &&
      Object.keys(parsed).length > 0 &&
      Object.entries(parsed).every(
        ([name, value]) => CURSOR_KEYS.has(name) && typeof value === 'string' && value.length <= 1024,
      )
    )
      return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new InvalidCursor();
}

const CURSOR_KEYS: ReadonlySet<string> = new Set(KEY_ATTRIBUTES);

export class InvalidCursor extends InvalidInput {
  override readonly name = 'InvalidCursor';
  constructor() {
    super('cursor is not one this API returned');
  }
}

/** One page of a query. */
export async function queryPage<T>(
  clients: Clients,
  input: Omit<QueryCommandInput, 'TableName'>,
  cursor?: string,
): Promise<Page<T>> {
  const start = decodeCursor(cursor);
  let out: QueryCommandOutput;
  try {
    out = await clients.doc.send(
      new QueryCommand({ TableName: clients.tableName, ...input, ExclusiveStartKey: start }),
    );
  } catch (error) {
    // A well-formed key that does not fit this query's index (a forged cursor): the caller's fault.
    if (start && (error as Error).name === 'ValidationException') throw new InvalidCursor();
    throw error;
  }
  const next = encodeCursor(out.LastEvaluatedKey);
  return { items: (out.Items ?? []) as T[], ...(next ? { next } : {}) };
}

/** Every item of a query, following pages. */
export async function queryAll<T>(
  clients: Clients,
  input: Omit<QueryCommandInput, 'TableName' | 'ExclusiveStartKey'>,
): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await clients.doc.send(
      new QueryCommand({
        TableName: clients.tableName,
        ...input,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((out.Items ?? []) as T[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/**
 * One page of the items of one kind, newest first, through the byKind index; `filter` drops items
 * from the page after the read (so a filtered page may hold fewer than `limit`).
 */
export function kindPage<T>(
  clients: Clients,
  kind: Kind,
  options: {
    limit: number;
    cursor?: string | undefined;
    filter?: { expression: string; names: Record<string, string>; values: Record<string, unknown> };
  },
): Promise<Page<T>> {
  const index = TABLE.indexes.byKind;
  const { filter } = options;
  return queryPage<T>(
    clients,
    {
      IndexName: index.name,
      KeyConditionExpression: '#k = :k',
      ExpressionAttributeNames: { '#k': index.partitionKey, ...filter?.names },
      ExpressionAttributeValues: { ':k': kind, ...filter?.values },
      ScanIndexForward: false,
      Limit: options.limit,
      ...(filter ? { FilterExpression: filter.expression } : {}),
    },
    options.cursor,
  );
}

/** Every item of one kind, through the byKind index. */
export function listKind<T>(clients: Clients, kind: Kind): Promise<T[]> {
  const index = TABLE.indexes.byKind;
  return queryAll<T>(clients, {
    IndexName: index.name,
    KeyConditionExpression: '#k = :k',
    ExpressionAttributeNames: { '#k': index.partitionKey },
    ExpressionAttributeValues: { ':k': kind },
  });
}

/** Store operations counted by a caller (the balancer reports them per run). */
export interface Usage {
  reads: number;
  writes: number;
  readCapacity: number;
  writeCapacity: number;
}

export const newUsage = (): Usage => ({ reads: 0, writes: 0, readCapacity: 0, writeCapacity: 0 });
