// Idempotency-Key records: the first request with a key claims it, stores its response once it
// has one, and a failed attempt forgets it. Every write is conditional or keyed to the claim.
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { Clients } from './clients.ts';
import { idempotencyKey } from './keys.ts';
import { getItem, putItem } from './table.ts';

export interface StoredResponse {
  status: number;
  contentType?: string;
  /** base64 of the body bytes (gzipped when `encoding` says so; empty when `omittedBytes` is set). */
  body: string;
  encoding?: 'gzip';
  /** The body was too large to keep in the item even gzipped: its size, and nothing to replay. */
  omittedBytes?: number;
}

export interface IdempotencyRecord {
  /** sha256 of method, path and body: what the key was first used for. */
  fingerprint: string;
  /** Absent while the first request is in progress. */
  response?: StoredResponse;
  /** Epoch seconds; DynamoDB TTL removes the item, and reads ignore it once past. */
  expiresAt: number;
  /** Epoch seconds the first request started; a claim with no response this old was abandoned. */
  startedAt: number;
}

/** The record stored under an Idempotency-Key, if any (expired ones included: the caller judges). */
export function findIdempotencyRecord(clients: Clients, key: string): Promise<IdempotencyRecord | undefined> {
  return getItem<IdempotencyRecord>(clients, idempotencyKey(key));
}

/**
 * Claims a key for a first attempt: only when free, expired, or claimed by an attempt that never
 * answered and started at or before `abandonedBefore`. ConditionFailed('claimIdempotencyKey') otherwise.
 */
export function claimIdempotencyKey(
  clients: Clients,
  key: string,
  claim: { fingerprint: string; startedAt: number; expiresAt: number; abandonedBefore: number },
): Promise<void> {
  return putItem(clients, 'claimIdempotencyKey', {
    Item: {
      ...idempotencyKey(key),
      fingerprint: claim.fingerprint,
      expiresAt: claim.expiresAt,
      startedAt: claim.startedAt,
    },
    ConditionExpression:
      'attribute_not_exists(pk) OR expiresAt <= :now OR (attribute_not_exists(#response) AND startedAt <= :stale)',
    ExpressionAttributeNames: { '#response': 'response' },
    ExpressionAttributeValues: { ':now': claim.startedAt, ':stale': claim.abandonedBefore },
  });
}

/** Stores the answer of the attempt that claimed the key, so retries replay it. */
export function storeIdempotentResponse(clients: Clients, key: string, record: Required<IdempotencyRecord>) {
  return putItem(clients, 'storeIdempotentResponse', {
    Item: { ...idempotencyKey(key), ...record },
  });
}

/** Forgets a claim whose attempt failed, so the client may retry with the same key. */
export async function forgetIdempotencyKey(clients: Clients, key: string): Promise<void> {
  await clients.doc.send(new DeleteCommand({ TableName: clients.tableName, Key: idempotencyKey(key) }));
}
