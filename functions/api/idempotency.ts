// Idempotency-Key on POSTs: the first request with a key stores its response in the table (with
// a TTL); a retry with the same key and the same body gets the same response again, and the same
// key with a different body is refused (422). A retry while the first is still running gets 409.
import { createHash } from 'node:crypto';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { MiddlewareHandler } from 'hono';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { idempotencyKey } from '../../shared/storage/keys.ts';
import { getItem, putItem } from '../../shared/storage/table.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest, conflict, unprocessable } from './problem.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Longer than any request may run (the Lambda timeout), so a live first attempt is never taken over. */
const ABANDONED_AFTER_S = 120;

interface StoredResponse {
  status: number;
  contentType?: string;
  /** base64 of the body bytes. */
  body: string;
}

interface IdempotencyItem {
  /** sha256 of method, path and body: what the key was first used for. */
  fingerprint: string;
  /** Absent while the first request is in progress. */
  response?: StoredResponse;
  /** Epoch seconds; DynamoDB TTL removes the item, and reads ignore it once past. */
  expiresAt: number;
  /** Epoch seconds the first request started; a claim with no response this old was abandoned. */
  startedAt: number;
}

export function idempotency(deps: ApiDeps): MiddlewareHandler {
  const { clients } = deps;
  return async (c, next) => {
    const key = c.req.header(IDEMPOTENCY_HEADER);
    if (c.req.method !== 'POST' || key === undefined) return next();
    if (!KEY_PATTERN.test(key))
      throw badRequest(`${IDEMPOTENCY_HEADER} must be 1–255 visible ASCII characters`);

    const body = new Uint8Array(await c.req.arrayBuffer());
    const fingerprint = createHash('sha256')
      .update(`${c.req.method} ${c.req.path}\n`)
      .update(body)
      .digest('hex');
    const nowSeconds = Math.floor(deps.clock() / 1000);
    const itemKey = idempotencyKey(key);

    const seen = await getItem<IdempotencyItem>(clients, itemKey);
    const abandoned = seen && !seen.response && seen.startedAt <= nowSeconds - ABANDONED_AFTER_S;
    if (seen && seen.expiresAt > nowSeconds && !abandoned) {
      if (seen.fingerprint !== fingerprint)
        throw unprocessable(`${IDEMPOTENCY_HEADER} ${key} was already used for a different request`);
      if (!seen.response) throw conflict(`a request with ${IDEMPOTENCY_HEADER} ${key} is still in progress`);
      return replay(seen.response);
    }

    const expiresAt = nowSeconds + Math.ceil(deps.idempotencyTtlMs / 1000);
    try {
      await putItem(clients, 'claimIdempotencyKey', {
        Item: { ...itemKey, fingerprint, expiresAt, startedAt: nowSeconds },
        // Free, expired, or a claim whose process died before answering (no response, too old).
        ConditionExpression:
          'attribute_not_exists(pk) OR expiresAt <= :now OR (attribute_not_exists(#response) AND startedAt <= :stale)',
        ExpressionAttributeNames: { '#response': 'response' },
        ExpressionAttributeValues: { ':now': nowSeconds, ':stale': nowSeconds - ABANDONED_AFTER_S },
      });
    } catch (error) {
      if (error instanceof ConditionFailed)
        throw conflict(`a request with ${IDEMPOTENCY_HEADER} ${key} is still in progress`);
      throw error;
    }

    let failed = true;
    try {
      await next();
      failed = c.res.status >= 500;
    } finally {
      if (failed) await forget(deps, itemKey);
    }
    if (failed) return;
    const bytes = new Uint8Array(await c.res.clone().arrayBuffer());
    const response: StoredResponse = {
      status: c.res.status,
      body: Buffer.from(bytes).toString('base64'),
      ...(c.res.headers.get('content-type') ? { contentType: c.res.headers.get('content-type')! } : {}),
    };
    await putItem(clients, 'storeIdempotentResponse', {
      Item: { ...itemKey, fingerprint, expiresAt, startedAt: nowSeconds, response },
    });
  };
}

function replay(stored: StoredResponse): Response {
  const headers = new Headers({ 'Idempotent-Replayed': 'true' });
  if (stored.contentType) headers.set('Content-Type', stored.contentType);
  const body = stored.status === 204 ? null : Buffer.from(stored.body, 'base64');
  return new Response(body, { status: stored.status, headers });
}

/** A failed first attempt leaves no trace, so the client may retry with the same key. */
async function forget(deps: ApiDeps, key: { pk: string; sk: string }) {
  await deps.clients.doc
    .send(new DeleteCommand({ TableName: deps.clients.tableName, Key: key }))
    .catch((error: unknown) => deps.logError(error));
}
