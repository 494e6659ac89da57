// Hostile requests through the AWS entry: API Gateway (HTTP API, payload 2.0) events whose
// caller-controlled parts are hostile: the raw path and query, header names and values (bytes
// above ASCII among them), cookies, and bodies, base64-flagged or not. The handler must never throw
// (a Lambda error is a 500 from the gateway), answer no 5xx, and a 4xx is a problem that changed nothing.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { storeEnv } from '../support/stores.ts';
import { hostileSegment, hostileString } from './fuzz-support.ts';
import { storesOf } from './fuzz-witness.ts';
import { aFuzzWorld, runs } from './fuzz-world.ts';
import { PROBLEM } from './support.ts';

type Handler = (
  event: unknown,
  context: unknown,
) => Promise<{ statusCode: number; body: string; headers?: Record<string, string> }>;

const world = await aFuzzWorld();
let handler: Handler;
const saved: Record<string, string | undefined> = {};
beforeAll(async () => {
  await world.seed();
  // The adapter logs each event it cannot read, Powertools each empty metrics flush; the answers are what is checked.
  vi.spyOn(console, 'error').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  // The entry builds its clients at module scope from the environment, as on AWS; the gateway authorises.
  const env = { ...storeEnv(world.api.clients), SEESAW_AUTH: 'gateway' };
  for (const name of Object.keys(env)) saved[name] = process.env[name];
  Object.assign(process.env, env);
  ({ handler } = (await import('../../functions/api/lambda.ts')) as unknown as { handler: Handler });
});
afterAll(() => {
  vi.restoreAllMocks();
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

interface Parts {
  method: string;
  rawPath: string;
  rawQueryString: string;
  headers: Record<string, string>;
  cookies?: string[];
  body?: string;
  isBase64Encoded: boolean;
}

/** A payload 2.0 event as the gateway builds it around the caller's parts. */
const eventOf = (p: Parts) => ({
  version: '2.0',
  routeKey: '$default',
  rawPath: p.rawPath,
  rawQueryString: p.rawQueryString,
  headers: { host: 'api.example.com', ...p.headers },
  ...(p.cookies ? { cookies: p.cookies } : {}),
  requestContext: {
    accountId: '123456789012',
    apiId: 'api',
    domainName: 'api.example.com',
    domainPrefix: 'api',
    http: {
      method: p.method,
      path: p.rawPath,
      protocol: 'HTTP/1.1',
      sourceIp: '127.0.0.1',
      userAgent: 'fuzz',
    },
    requestId: 'r1',
    routeKey: '$default',
    stage: '$default',
    time: '02/Dec/2026:00:00:00 +0000',
    timeEpoch: 0,
  },
  isBase64Encoded: p.isBase64Encoded,
  ...(p.body !== undefined ? { body: p.body } : {}),
});

/**
 * A header name as HTTP allows it (a token), and a value of visible Latin-1 and spaces. Not
 * Idempotency-Key, whose first answer is stored even when refused (fuzz-edges.test.ts has its law).
 */
const headerName = fc
  .oneof(
    fc.constantFrom('content-type', 'content-length', 'authorization', 'cookie', 'x-forwarded-for'),
    fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,16}$/),
  )
  .filter((name) => name.toLowerCase() !== 'idempotency-key');
const headerValue = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/wasm',
    'multipart/form-data',
    'text/plain',
    '-1',
    '99999999999',
  ),
  fc.string({
    unit: fc
      .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff }))
      .map((c) => String.fromCharCode(c)),
    maxLength: 80,
  }),
);

/** The caller's parts of an event. The gateway base64-encodes a body itself, so a flagged one is valid base64. */
const parts: fc.Arbitrary<Parts> = fc
  .record(
    {
      method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'),
      rawPath: fc
        .tuple(
          fc.constantFrom(
            '/v1/vms',
            '/v1/vms/',
            '/v1/nodes/',
            '/v1/images/',
            '/v1/modules',
            '/ui/v1/vms/',
            '/dashboard/',
            '/',
          ),
          hostileSegment,
        )
        .map(([path, segment]) => (path.endsWith('/') ? `${path}${segment}` : path)),
      rawQueryString: fc.oneof(
        fc.constant(''),
        hostileString,
        fc.constantFrom('limit=%zz', 'node=%', 'a=1&&&b', '='),
      ),
      headers: fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
      cookies: fc.array(hostileString, { maxLength: 2 }),
      body: fc.oneof(hostileString, fc.constantFrom('{"guest":"cpu"}', '{"dryRun":true}', '{')),
      isBase64Encoded: fc.boolean(),
    },
    { requiredKeys: ['method', 'rawPath', 'rawQueryString', 'headers', 'isBase64Encoded'] },
  )
  .map((p) =>
    p.isBase64Encoded && p.body !== undefined ? { ...p, body: Buffer.from(p.body).toString('base64') } : p,
  );

/** Sends one event and checks the laws: no throw, no 5xx, a 4xx a problem that changed nothing. */
async function answerTo(p: Parts) {
  const before = await storesOf(world.api);
  const res = await handler(eventOf(p), {});
  const what = `${JSON.stringify(p).slice(0, 400)} → ${res.statusCode} ${res.body?.slice(0, 200)}`;
  expect(res.statusCode, what).toBeLessThan(500);
  if (res.statusCode < 400 && p.method !== 'GET' && p.method !== 'HEAD') return res;
  expect(await storesOf(world.api), what).toEqual(before);
  if (res.statusCode < 400 || p.method === 'HEAD') return res;
  const type = Object.entries(res.headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  expect(type, what).toBe(PROBLEM);
  expect(JSON.parse(res.body).status, what).toBe(res.statusCode);
  return res;
}

const plain: Parts = {
  method: 'GET',
  rawPath: '/v1/vms',
  rawQueryString: '',
  headers: {},
  isBase64Encoded: false,
};

describe('hostile events through the Lambda entry', () => {
  it('never throws or answers 5xx; a 4xx is a problem and changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(parts, async (p) => {
        await answerTo(p);
      }),
      runs(100),
    );
  });

  // Found by the property: the adapter answered these itself, with a bare text/plain 400.
  it('answers a GET with a body with a 400 problem', async () => {
    expect((await answerTo({ ...plain, body: 'x' })).statusCode).toBe(400);
  });

  it('answers a cookie beyond Latin-1 with a 400 problem', async () => {
    expect((await answerTo({ ...plain, cookies: ['a=\u{1F600}'] })).statusCode).toBe(400);
  });

  it('still answers a readable GET with the app', async () => {
    expect((await answerTo(plain)).statusCode).toBe(200);
  });
});
