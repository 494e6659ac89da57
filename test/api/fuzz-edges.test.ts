// Hostile input around the operations rather than in them: missing and garbled bearer tokens on
// every /v1 operation (and its /ui/v1 mirror), methods and paths no route has, and Idempotency-Key
// values. The same laws as fuzz.test.ts: no 5xx, no hang, a 4xx is a problem, and nothing changed.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostileSegment } from './fuzz-support.ts';
import { type Hostile, storesOf } from './fuzz-witness.ts';
import { aFuzzWorld, runs } from './fuzz-world.ts';
import { TOKEN } from './support.ts';

const world = await aFuzzWorld();
beforeAll(() => world.seed());

/** Any character a header value may carry (no NUL, CR or LF; Latin-1, as HTTP allows). */
const headerChar = fc
  .integer({ min: 1, max: 255 })
  .filter((code) => code !== 10 && code !== 13)
  .map((code) => String.fromCharCode(code));
const headerText = (maxLength: number) => fc.string({ unit: headerChar, maxLength });

/** An Authorization header that is not `Bearer <the token>`; undefined for none at all. */
const garbledAuth = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    '',
    'Bearer',
    'Bearer ',
    `Bearer ${TOKEN}x`,
    `Bearer ${TOKEN.slice(1)}`,
    `Bearer ${TOKEN.toUpperCase()}`,
    `Bearer ${TOKEN} ${TOKEN}`,
    `Bearer "${TOKEN}"`,
    `Token ${TOKEN}`,
    `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`,
    TOKEN,
  ),
  headerText(300),
  headerText(300).map((text) => `Bearer ${text}`),
  fc.integer({ min: 1000, max: 60_000 }).map((n) => `Bearer ${'t'.repeat(n)}`),
);

describe('hostile input around the operations', () => {
  const secured = world.operations.filter((op) => op.secured);

  it('answers a missing or garbled bearer token with a 401 problem that changes nothing', async () => {
    expect(secured.length).toBeGreaterThanOrEqual(27);
    const request = fc
      .tuple(fc.constantFrom(...secured), garbledAuth, fc.boolean())
      .chain(([op, auth, ui]) =>
        world.requestOf(op).map((r): Hostile => {
          const { authorization: _token, ...headers } = r.headers;
          return {
            ...r,
            path: ui ? `/ui${r.path}` : r.path,
            headers: auth === undefined ? headers : { ...headers, authorization: auth },
          };
        }),
      )
      .filter((r) => r.path.startsWith('/v1/') || r.path.startsWith('/ui/v1/'));
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const { status } = await world.witness.exchange(r);
        expect(status, `${r.method} ${r.path.slice(0, 200)} ${r.headers.authorization}`).toBe(401);
      }),
      runs(80),
    );
  });

  it('answers a method or path no route has with a problem, and nothing changes', async () => {
    const method = fc.constantFrom(
      'GET',
      'POST',
      'PUT',
      'PATCH',
      'DELETE',
      'OPTIONS',
      'HEAD',
      'patch',
      'PROPFIND',
    );
    const prefix = fc.constantFrom(
      '',
      '/v1',
      '/ui/v1',
      '/ui',
      '/dashboard',
      '//v1',
      '/v1/vms',
      '/v1/nodes',
      '/v2',
    );
    const path = fc
      .tuple(prefix, fc.array(hostileSegment, { maxLength: 4 }), fc.boolean())
      .map(([start, segments, slash]) => `${start}/${segments.join('/')}${slash ? '/' : ''}`);
    const body = fc.option(fc.string({ maxLength: 40 }), { nil: undefined });
    const request = fc.tuple(method, path, body).map(
      ([m, p, b]): Hostile => ({
        method: m,
        path: p,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        ...(b !== undefined && m !== 'GET' && m !== 'HEAD' ? { body: b } : {}),
      }),
    );
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        await world.witness.exchange(r);
      }),
      runs(80),
    );
  });

  it('answers the routes outside the document (the dashboard, /openapi.json) with no 5xx, a 4xx a problem', async () => {
    const documented = new Set(
      world.operations.map((op) => `${op.method} ${op.path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    const others = [...new Set(world.api.app.routes.map((r) => `${r.method} ${r.path}`))]
      .filter((route) => !route.startsWith('ALL ') && !documented.has(route))
      .map((route) => route.split(' ') as [string, string]);
    expect(others.map(([, path]) => path)).toContain('/dashboard/:file');
    const request = fc
      .tuple(fc.constantFrom(...others), fc.oneof(hostileSegment, fc.constantFrom('app.js', 'index.html')))
      .chain(([[method, path], segment]) =>
        fc.tuple(
          fc.constant(method),
          fc.constant(path.replace(/:\w+/g, segment)),
          fc.constantFrom('', '?x=%zz'),
        ),
      )
      .map(([method, path, query]): Hostile => ({ method, path: `${path}${query}`, headers: {} }));
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        await world.witness.exchange(r);
      }),
      runs(30),
    );
  });

  it('refuses a malformed Idempotency-Key (400); a valid one replays its first answer and changes nothing again', async () => {
    const posts = world.operations.filter((op) => op.method === 'POST');
    const key = fc.oneof(
      fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
      fc.constantFrom('', ' ', 'x'.repeat(256), 'é', 'a b', '\t'),
      headerText(40),
    );
    const request = fc
      .tuple(fc.constantFrom(...posts), key)
      .chain(([op, k]) =>
        world.requestOf(op).map((r): Hostile => ({ ...r, headers: { ...r.headers, 'idempotency-key': k } })),
      );
    const used = new Set<string>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        // Headers trim a value's surrounding whitespace, as the app then sees it.
        const sent = (r.headers['idempotency-key'] ?? '').trim();
        // A key used before answers for its first request: not this law's case.
        if (used.has(sent)) return;
        used.add(sent);
        const before = await storesOf(world.api);
        const first = await world.witness.exchange(r, { idempotencyKey: sent });
        if (!/^[\x21-\x7e]{1,255}$/.test(sent)) {
          expect(first.status, sent).toBe(400);
          expect(await storesOf(world.api)).toEqual(before);
          return;
        }
        const again = await world.witness.exchange(r);
        expect(again.status).toBe(first.status);
        expect(again.replayed).toBe(true);
      }),
      runs(40),
    );
  });
});
