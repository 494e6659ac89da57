// A response kept for an Idempotency-Key replay lives in one DynamoDB item (400 KB at most). It is
// kept gzipped, so a large but ordinary answer (a balance run's record or plan) still replays byte
// for byte; one too large even gzipped is not kept, and the request still succeeds: before, the
// write failed after the request had done its work, its caller got a 500, and every retry with the
// key a 409 until the claim was abandoned. Real middleware, real table (dynalite).
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiDeps } from '../../functions/api/deps.ts';
import { idempotency } from '../../functions/api/idempotency.ts';
import { PROBLEM_CONTENT_TYPE, problemResponse, toProblem } from '../../functions/api/problem.ts';
import { findIdempotencyRecord } from '../../shared/storage/idempotency.ts';
import { freshStores } from '../support/stores.ts';
import { NOW, TOKEN } from './support.ts';

/** Repetitive JSON of 550 KB (its gzip in base64: 70 KB) and 300 KB of random bytes (does not gzip). */
const LARGE_JSON = JSON.stringify({
  moves: Array.from({ length: 20_000 }, (_, i) => ({ vm: `vm-${i}`, to: 'n2' })),
});
const NOISE = randomBytes(300 * 1024);

describe('Idempotency-Key with a large response', () => {
  let app: Hono;
  let clients: Awaited<ReturnType<typeof freshStores>>;
  let runs = 0;
  beforeAll(async () => {
    clients = await freshStores();
    const deps = apiDeps({
      clients,
      auth: { mode: 'token', token: TOKEN },
      clock: () => NOW,
      logError: () => {},
    });
    app = new Hono();
    app.onError((error, c) => problemResponse(c, toProblem(error)));
    app.use(idempotency(deps));
    app.post('/large', (c) => {
      runs += 1;
      return c.body(LARGE_JSON, 200, { 'content-type': 'application/json' });
    });
    app.post('/noise', (c) => {
      runs += 1;
      return c.body(NOISE, 200, { 'content-type': 'application/octet-stream' });
    });
  });
  const post = (path: string, key: string) =>
    app.request(path, { method: 'POST', headers: { 'idempotency-key': key }, body: '{}' });

  it('keeps a large answer gzipped and replays it byte for byte, running the request once', async () => {
    const before = runs;
    const first = await post('/large', 'large-1');
    expect(first.status).toBe(200);
    expect(await first.text()).toBe(LARGE_JSON);
    const record = await findIdempotencyRecord(clients, 'large-1');
    expect(record?.response?.encoding).toBe('gzip');
    expect(record?.response?.body.length).toBeLessThan(LARGE_JSON.length / 5);
    const retry = await post('/large', 'large-1');
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('content-type')).toBe('application/json');
    expect(await retry.text()).toBe(LARGE_JSON);
    expect(runs - before).toBe(1);
  });

  it('answers an answer too large to keep, and a retry learns it succeeded (409), not run again', async () => {
    const before = runs;
    const first = await post('/noise', 'noise-1');
    expect(first.status).toBe(200);
    expect(Buffer.from(await first.arrayBuffer()).equals(NOISE)).toBe(true);
    const record = await findIdempotencyRecord(clients, 'noise-1');
    expect(record?.response).toMatchObject({ status: 200, body: '', omittedBytes: NOISE.length });
    const retry = await post('/noise', 'noise-1');
    expect(retry.status).toBe(409);
    expect(retry.headers.get('content-type')).toBe(PROBLEM_CONTENT_TYPE);
    expect((await retry.json()).detail).toMatch(/succeeded \(200\).*too large to keep/);
    expect(runs - before).toBe(1);
  });
});
