// The peer channel's HTTP side (node-agent/peer): what it accepts, what it refuses (as
// application/problem+json, with the handler never called), and the client and server together.
import { describe, expect, it } from 'vitest';
import {
  MAX_PUSH_BYTES,
  MAX_WAKE_BYTES,
  type PeerHandlers,
  type PushedObject,
  peerApp,
  type WakeMessage,
} from '../../../node-agent/peer/app.ts';
import { sendPush, sendWake } from '../../../node-agent/peer/client.ts';
import { startPeerServer } from '../../../node-agent/peer/server.ts';
import { httpPeer, parseListen } from '../../../node-agent/peer/transport.ts';

const KEY = 'images/vm-1/3/7/manifest.json';

/** An app whose handlers record what reached them and answer `verdict`. */
function rig(verdict: { wake?: 'accepted' | 'unknown'; push?: 'accepted' | 'unknown' | 'full' } = {}) {
  const wakes: WakeMessage[] = [];
  const pushes: PushedObject[] = [];
  const handlers: PeerHandlers = {
    wake: (m) => {
      wakes.push(m);
      return verdict.wake ?? 'accepted';
    },
    push: (o) => {
      pushes.push(o);
      return verdict.push ?? 'accepted';
    },
  };
  return { app: peerApp(handlers), wakes, pushes };
}

const wake = (body: string, type = 'application/json') => ({
  method: 'POST',
  headers: { 'content-type': type },
  body,
});
const push = (body: Uint8Array, type = 'application/octet-stream') => ({
  method: 'PUT',
  headers: { 'content-type': type },
  body: new Uint8Array(body),
});
const pushPath = (vm = 'vm-1', key = KEY, order = 'm-1') =>
  `/v1/vms/${vm}/final-delta?${new URLSearchParams({ order, key })}`;

async function expectProblem(response: Response, status: number) {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = (await response.json()) as { status: number; title: string; detail: string };
  expect(body.status).toBe(status);
  expect(body.detail.length).toBeGreaterThan(0);
}

describe('the peer channel: wake-ups', () => {
  it('hands a well-formed wake-up to the agent and answers 202', async () => {
    const { app, wakes } = rig();
    const r = await app.request('/v1/wake', wake(JSON.stringify({ vm: 'vm-1', order: 'm-1' })));
    expect(r.status).toBe(202);
    expect(wakes).toEqual([{ vm: 'vm-1', order: 'm-1' }]);
  });

  it.each([
    ['not JSON', '{vm:'],
    ['an array', '[]'],
    ['a missing order', JSON.stringify({ vm: 'vm-1' })],
    ['an id with a slash', JSON.stringify({ vm: '../x', order: 'm' })],
    ['an empty id', JSON.stringify({ vm: '', order: 'm' })],
    ['a number for an id', JSON.stringify({ vm: 7, order: 'm' })],
    ['an unknown field', JSON.stringify({ vm: 'vm-1', order: 'm', fence: 9 })],
  ])('refuses %s with a 400 problem, the agent never called', async (_, body) => {
    const { app, wakes } = rig();
    await expectProblem(await app.request('/v1/wake', wake(body)), 400);
    expect(wakes).toEqual([]);
  });

  it('refuses a body over its bound unread (413)', async () => {
    const { app, wakes } = rig();
    const body = JSON.stringify({ vm: 'vm-1', order: 'm-1', pad: 'x'.repeat(MAX_WAKE_BYTES) });
    await expectProblem(await app.request('/v1/wake', wake(body)), 413);
    expect(wakes).toEqual([]);
  });

  it('says 404 for a VM the agent has no business with', async () => {
    const { app, wakes } = rig({ wake: 'unknown' });
    await expectProblem(await app.request('/v1/wake', wake(JSON.stringify({ vm: 'vm-9', order: 'm' }))), 404);
    expect(wakes).toEqual([{ vm: 'vm-9', order: 'm' }]);
  });

  it('answers unknown routes and methods with a 404 problem', async () => {
    const { app, wakes } = rig();
    await expectProblem(await app.request('/v1/nope', wake('{}')), 404);
    await expectProblem(await app.request('/v1/wake', { method: 'GET' }), 404);
    expect(wakes).toEqual([]);
  });
});

describe('the peer channel: pushed final deltas', () => {
  const bytes = new Uint8Array([1, 2, 3, 4, 5]);

  it('hands the bytes, key and order to the agent', async () => {
    const { app, pushes } = rig();
    const r = await app.request(pushPath(), push(bytes));
    expect(r.status).toBe(202);
    expect(pushes).toHaveLength(1);
    expect(pushes[0]).toMatchObject({ vm: 'vm-1', order: 'm-1', key: KEY });
    expect([...pushes[0]!.body]).toEqual([...bytes]);
  });

  it.each([
    ['a key of another VM', pushPath('vm-1', 'images/vm-2/3/7/manifest.json'), 400],
    ['a key that is no manifest', pushPath('vm-1', 'images/vm-1/3/7/pack-0'), 400],
    ['a bad VM id', pushPath('.x', KEY), 400],
    ['no order', `/v1/vms/vm-1/final-delta?key=${encodeURIComponent(KEY)}`, 400],
  ])('refuses %s (%s)', async (_, path, status) => {
    const { app, pushes } = rig();
    await expectProblem(await app.request(path, push(bytes)), status);
    expect(pushes).toEqual([]);
  });

  it('refuses another media type (415), an empty body (400) and an oversize one (413)', async () => {
    const { app, pushes } = rig();
    await expectProblem(await app.request(pushPath(), push(bytes, 'application/json')), 415);
    await expectProblem(await app.request(pushPath(), push(new Uint8Array(0))), 400);
    await expectProblem(await app.request(pushPath(), push(new Uint8Array(MAX_PUSH_BYTES + 1))), 413);
    expect(pushes).toEqual([]);
  });

  it("passes the agent's refusals on: 404 for no such migration, 503 when it has no room", async () => {
    await expectProblem(await rig({ push: 'unknown' }).app.request(pushPath(), push(bytes)), 404);
    await expectProblem(await rig({ push: 'full' }).app.request(pushPath(), push(bytes)), 503);
  });
});

describe('the peer channel over HTTP', () => {
  it('carries a wake-up and a push from the client to the server, and says false when refused', async () => {
    const { wakes, pushes } = rig();
    let verdict: 'accepted' | 'unknown' = 'accepted';
    const server = await startPeerServer(
      { host: '127.0.0.1' },
      {
        wake: (m) => {
          wakes.push(m);
          return verdict;
        },
        push: (o) => {
          pushes.push(o);
          return verdict;
        },
      },
    );
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await sendWake(server.url, { vm: 'vm-1', order: 'm-1' })).toBe(true);
      const body = new Uint8Array(300 * 1024).map((_, i) => i % 251);
      expect(await sendPush(server.url, { vm: 'vm-1', order: 'm-1', key: KEY, body })).toBe(true);
      expect(wakes).toEqual([{ vm: 'vm-1', order: 'm-1' }]);
      expect(Buffer.from(pushes[0]!.body).equals(Buffer.from(body))).toBe(true);
      verdict = 'unknown';
      expect(await sendWake(server.url, { vm: 'vm-2', order: 'm-1' })).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('says false, and throws nothing, when no peer listens there', async () => {
    const peer = httpPeer({ host: '127.0.0.1' });
    const url = await peer.listen({ wake: () => 'accepted', push: () => 'accepted' });
    await peer.close();
    expect(await peer.wake(url, { vm: 'vm-1', order: 'm-1' })).toBe(false);
    expect(await peer.push(url, { vm: 'vm-1', order: 'm-1', key: KEY, body: new Uint8Array(3) })).toBe(false);
  });

  it('reads --peer-listen addresses, and refuses malformed ones', () => {
    expect(parseListen('127.0.0.1')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('0.0.0.0:7400')).toEqual({ host: '0.0.0.0', port: 7400 });
    expect(parseListen('[::1]:7400')).toEqual({ host: '::1', port: 7400 });
    expect(parseListen('localhost')).toEqual({ host: 'localhost', port: 0 });
    for (const bad of ['', ':80', '1.2.3.4:99999', 'a:b', 'h:1:2'])
      expect(() => parseListen(bad), bad).toThrow();
  });
});
