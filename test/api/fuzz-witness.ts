// Sending one hostile request and checking the laws every answer must keep (test/api/fuzz.test.ts):
// no 5xx, no hang, a 4xx is a problem whose status is the HTTP status, and what it may not change
// (table items and bucket objects) is as it was.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { expect } from 'vitest';
import { ProblemSchema } from '../../functions/api/problem.ts';
import { PROBLEM, type TestApi } from './support.ts';

/** One request to send. */
export interface Hostile {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** Every table item and every bucket object: what a refused request must leave as it was. */
export async function storesOf(api: TestApi): Promise<Stores> {
  const objects = await api.clients.s3.send(new ListObjectsV2Command({ Bucket: api.clients.bucketName }));
  return {
    items: (await api.snapshot()) as Stores['items'],
    objects: (objects.Contents ?? []).map((o) => `${o.Key} ${o.ETag} ${o.Size}`).sort(),
  };
}

/** How long any one request may take, on a loaded two-core machine, before it counts as a hang. */
export const HANG_MS = 10_000;

/** The answer of `app.request`, or a failure naming the request that did not finish in time. */
async function sendWithin(api: TestApi, request: Hostile): Promise<Response> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${request.method} ${request.path.slice(0, 200)} hung past ${HANG_MS} ms`)),
      HANG_MS,
    );
  });
  const init: RequestInit = { method: request.method, headers: request.headers };
  if (request.body !== undefined) init.body = request.body as BodyInit;
  try {
    return await Promise.race([Promise.resolve(api.app.request(request.path, init)), hang]);
  } finally {
    clearTimeout(timer);
  }
}

interface Stores {
  items: { pk?: unknown }[];
  objects: string[];
}

/** The stores without the Idempotency-Key record of `key`: the one item a refused request may write. */
const withoutRecordOf = (stores: Stores, key: string | undefined): Stores =>
  key === undefined
    ? stores
    : { ...stores, items: stores.items.filter((item) => item.pk !== `IDEMPOTENCY#${key}`) };

/** What one exchange came to: the status, the problem of a 4xx, whether it was an Idempotency-Key replay. */
export interface Exchanged {
  status: number;
  problem?: Record<string, unknown>;
  replayed: boolean;
}

/** Tracks the stores between requests, so each request costs one read of them, not two. */
export function aWitness(api: TestApi, logged: unknown[] = []) {
  let last: Stores | undefined;
  return {
    async start() {
      last = await storesOf(api);
    },
    /**
     * Sends `request` and checks the laws: no 5xx or hang; a 4xx is a problem whose status is the
     * HTTP status; a 4xx, a GET or a replay changes nothing (but the Idempotency-Key record of
     * `idempotencyKey`, which a first answer may store).
     */
    async exchange(request: Hostile, options: { idempotencyKey?: string } = {}): Promise<Exchanged> {
      const res = await sendWithin(api, request);
      const text = await res.text();
      const now = await storesOf(api);
      const before = last;
      last = now;
      const replayed = res.headers.get('idempotent-replayed') === 'true';
      const what = `${request.method} ${request.path.slice(0, 300)} → ${res.status} ${text.slice(0, 300)}`;
      expect(res.status, `${what}\nlogged: ${logged.map(String).join('\n')}`).toBeLessThan(500);
      const safe = request.method === 'GET' || request.method === 'HEAD';
      if (res.status < 400 && !safe && !replayed) return { status: res.status, replayed };
      const key = replayed ? undefined : options.idempotencyKey;
      expect(withoutRecordOf(now, key), `${what}: the stores changed`).toEqual(
        before && withoutRecordOf(before, key),
      );
      if (res.status < 400) return { status: res.status, replayed };
      expect(res.headers.get('content-type'), what).toBe(PROBLEM);
      if (request.method === 'HEAD') return { status: res.status, replayed };
      const problem = JSON.parse(text) as Record<string, unknown>;
      expect(ProblemSchema.safeParse(problem).success, what).toBe(true);
      expect(problem.status, what).toBe(res.status);
      expect(problem.type, what).toMatch(/^urn:seesaw:problem:[a-z-]+$/);
      return { status: res.status, problem, replayed };
    },
  };
}
