// Hostile bytes on the wire: the local server (`seesaw up`'s, @hono/node-server) fed raw HTTP over a
// socket, with request targets, headers and bodies no fetch client would send: raw non-ASCII bytes
// and broken escapes in the target, absolute and asterisk forms, duplicate or lying Content-Length,
// broken chunked bodies. No answer is a 5xx, none hangs, a 4xx from the app is a problem, and the
// stores are unchanged by every one that is refused.
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import { hostileSegment } from './fuzz-support.ts';
import { HANG_MS, storesOf } from './fuzz-witness.ts';
import { aFuzzWorld, runs } from './fuzz-world.ts';
import { PROBLEM, TOKEN } from './support.ts';

const world = await aFuzzWorld();
let server: ApiServer;
beforeAll(async () => {
  await world.seed();
  server = await startApiServer({ clients: world.api.clients, token: TOKEN, port: 0, logError: () => {} });
});
afterAll(() => server?.close());

/** A raw answer: its status, headers (lower-case names) and body, decoded from chunks when chunked. */
interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `bytes`, half-closes, and reads the answer until the server closes; fails past HANG_MS. */
function exchangeRaw(port: number, bytes: Buffer): Promise<RawAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no answer within ${HANG_MS} ms to ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}`,
        ),
      );
    }, HANG_MS);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseAnswer(Buffer.concat(chunks)));
    });
    socket.end(bytes);
  });
}

function parseAnswer(raw: Buffer): RawAnswer | undefined {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers = Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  const rest = raw.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  const body = headers['transfer-encoding'] === 'chunked' ? unchunked(rest) : rest.toString('utf8');
  return { status, headers, body };
}

function unchunked(raw: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const line = raw.indexOf('\r\n', at);
    const size = Number.parseInt(raw.subarray(at, line).toString('latin1'), 16);
    if (!size) break;
    parts.push(raw.subarray(line + 2, line + 2 + size));
    at = line + 2 + size + 2;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Request targets: real paths with hostile segments or raw bytes, and the odd forms of RFC 9112. */
const target = fc.oneof(
  fc
    .tuple(
      fc.constantFrom('/v1/vms/', '/v1/nodes/', '/v1/images/', '/v1/plans/', '/dashboard/', '/ui/v1/vms/'),
      hostileSegment,
    )
    .map(([path, segment]) => Buffer.from(`${path}${segment}`)),
  fc
    .tuple(fc.constantFrom('/v1/vms/', '/v1/vms?node=', '/'), fc.uint8Array({ minLength: 1, maxLength: 12 }))
    .map(([path, bytes]) =>
      Buffer.concat([Buffer.from(path), Buffer.from(bytes.filter((b) => b > 0x20 && b !== 0x7f))]),
    ),
  fc
    .constantFrom(
      '*',
      'http://evil.example/v1/vms',
      '//v1/vms',
      'v1/vms',
      '/v1/vms#x',
      '/%',
      '/v1/vms?%',
      '/v1/vms?cursor=%zz',
    )
    .map((t) => Buffer.from(t)),
);

const method = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'FOO');

/** Header blocks a fetch client would refuse to send. */
const headers = fc.oneof(
  fc.constant(''),
  fc.constantFrom(
    'Content-Length: 5\r\nContent-Length: 7\r\n',
    'Content-Length: -1\r\n',
    'Content-Length: 99999999999999999999\r\n',
    'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n',
    'Transfer-Encoding: chunked\r\n',
    'Transfer-Encoding: gzip\r\n',
    'Content-Type: application/json\r\nContent-Encoding: gzip\r\n',
    `Authorization: Bearer ${TOKEN}\r\nAuthorization: Bearer nope\r\n`,
    'Host: \r\n',
    'X-\u00ff: \u00ff\r\n',
    `X-Big: ${'b'.repeat(20_000)}\r\n`,
  ),
);

/** Bodies: JSON, truncated JSON, broken chunks. */
const body = fc.oneof(
  fc.constant(''),
  fc.constantFrom('{"guest":"cpu"}', '{"guest":', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\nxx\r\n', '3\r\nab'),
  fc.string({ unit: 'binary', maxLength: 64 }),
);

describe('hostile bytes on the wire to the local server', () => {
  it('answers every one with no 5xx and no hang; a refused one is a problem and changes nothing', async () => {
    const seen = new Set<number | undefined>();
    await fc.assert(
      fc.asyncProperty(method, target, headers, body, async (m, t, h, b) => {
        const head = Buffer.from(
          `${m} ${t.toString('latin1')} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\n${h}Connection: close\r\n\r\n`,
          'latin1',
        );
        const request = Buffer.concat([head, Buffer.from(b)]);
        const before = await storesOf(world.api);
        const answer = await exchangeRaw(server.port, request);
        seen.add(answer?.status);
        const what = `${JSON.stringify(request.toString('latin1').slice(0, 300))} → ${answer?.status} ${answer?.body.slice(0, 200)}`;
        // No answer at all: the parser dropped the connection, which is a refusal too.
        if (answer) expect(answer.status, what).toBeLessThan(500);
        if (answer && answer.status < 400 && m !== 'GET') return;
        expect(await storesOf(world.api), what).toEqual(before);
        // Node's own parser answers a request it cannot read with a bare 400 and no body.
        if (!answer || answer.status < 400 || answer.body === '') return;
        expect(answer.headers['content-type'], what).toBe(PROBLEM);
        expect(JSON.parse(answer.body).status, what).toBe(answer.status);
      }),
      runs(60),
    );
    // The answers were read: the app's 404s and the parser's 400s are among them.
    expect([...seen]).toEqual(expect.arrayContaining([400, 404]));
  });
});
