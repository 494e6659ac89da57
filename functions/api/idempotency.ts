// Idempotency-Key on POSTs: the first request with a key stores its response in the table (with
// a TTL); a retry with the same key and the same body gets the same response again, and the same
// key with a different body is refused (422). A retry while the first is still running gets 409.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Context, MiddlewareHandler } from 'hono';
import { ConditionFailed } from '../../shared/errors.ts';
import {
  claimIdempotencyKey,
  findIdempotencyRecord,
  forgetIdempotencyKey,
  type StoredResponse,
  storeIdempotentResponse,
} from '../../shared/storage/idempotency.ts';
import type { ApiDeps } from './deps.ts';
import { badRequest, conflict, unprocessable } from './problem.ts';

export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** Longer than any request may run (the Lambda timeout), so a live first attempt is never taken over. */
const ABANDONED_AFTER_S = 120;

export function idempotency(deps: ApiDeps): MiddlewareHandler {
  const { clients } = deps;
  return async (c, next) => {
    const key = c.req.header(IDEMPOTENCY_HEADER);
    if (c.req.method !== 'POST' || key === undefined) return next();
    if (!KEY_PATTERN.test(key))
      throw badRequest(`${IDEMPOTENCY_HEADER} must be 1–255 visible ASCII characters`);

    const fingerprint = await fingerprintOf(c);
    const nowSeconds = Math.floor(deps.clock() / 1000);
    const abandonedBefore = nowSeconds - ABANDONED_AFTER_S;

    const seen = await findIdempotencyRecord(clients, key);
    const abandoned = seen && !seen.response && seen.startedAt <= abandonedBefore;
    if (seen && seen.expiresAt > nowSeconds && !abandoned) {
      if (seen.fingerprint !== fingerprint)
        throw unprocessable(`${IDEMPOTENCY_HEADER} ${key} was already used for a different request`);
      if (!seen.response) throw conflict(`a request with ${IDEMPOTENCY_HEADER} ${key} is still in progress`);
      return replay(key, seen.response);
    }

    const claim = {
      fingerprint,
      startedAt: nowSeconds,
      expiresAt: nowSeconds + Math.ceil(deps.idempotencyTtlMs / 1000),
    };
    try {
      await claimIdempotencyKey(clients, key, { ...claim, abandonedBefore });
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
      // A failed first attempt leaves no trace, so the client may retry with the same key.
      if (failed) await forgetIdempotencyKey(clients, key).catch((error: unknown) => deps.logError(error));
    }
    if (failed) return;
    await storeIdempotentResponse(clients, key, { ...claim, response: await storedResponseOf(c.res) });
  };
}

/** sha256 of method, path and body: what the key is used for. */
async function fingerprintOf(c: Context): Promise<string> {
  const body = new Uint8Array(await c.req.arrayBuffer());
  return createHash('sha256').update(`${c.req.method} ${c.req.path}\n`).update(body).digest('hex');
}

/**
 * What a replay needs of the response. The body is kept gzipped (base64 in the item) so a large one,
 * a balance run's record or plan, fits DynamoDB's 400 KB item; one that does not fit even so is not
 * kept: the write would fail after the request had done its work, and its caller get a 500.
 */
async function storedResponseOf(res: Response): Promise<StoredResponse> {
  const bytes = new Uint8Array(await res.clone().arrayBuffer());
  const contentType = res.headers.get('content-type');
  const zipped = gzipSync(bytes);
  const kept = zipped.length <= MAX_KEPT_BYTES;
  return {
    status: res.status,
    body: kept ? zipped.toString('base64') : '',
    ...(contentType ? { contentType } : {}),
    ...(kept ? { encoding: 'gzip' as const } : { omittedBytes: bytes.length }),
  };
}

/** Gzipped bytes of a response body kept for replay: their base64 (341 KB) still fits the 400 KB item. */
const MAX_KEPT_BYTES = 256 * 1024;

function replay(key: string, stored: StoredResponse): Response {
  if (stored.omittedBytes !== undefined)
    throw conflict(
      `the request with ${IDEMPOTENCY_HEADER} ${key} succeeded (${stored.status}), but its response ` +
        `(${stored.omittedBytes} bytes) was too large to keep for a replay; read the result instead`,
    );
  const headers = new Headers({ 'Idempotent-Replayed': 'true' });
  if (stored.contentType) headers.set('Content-Type', stored.contentType);
  const bytes = Buffer.from(stored.body, 'base64');
  const body = stored.status === 204 ? null : stored.encoding === 'gzip' ? gunzipSync(bytes) : bytes;
  return new Response(body, { status: stored.status, headers });
}
