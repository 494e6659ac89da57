// Sends peer-channel messages (see app.ts) with node:http over kept-alive connections (fetch took
// 25-60 ms to send 300 KiB on loopback where this takes a few). A message is only a hint: any
// failure (no server, a refusal, a timeout) is swallowed and reported as false, and the store's
// watches carry on.
import { Agent, request } from 'node:http';
import type { PushedObject, WakeMessage } from './app.ts';

/** A wake-up that has not arrived by then is of no use: the watch has read the item by now. */
const WAKE_TIMEOUT_MS = 1_000;
const PUSH_TIMEOUT_MS = 5_000;

const connections = new Agent({ keepAlive: true, maxSockets: 8 });

function send(
  url: URL,
  method: 'POST' | 'PUT',
  type: string,
  body: Uint8Array | string,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method, agent: connections, timeout: timeoutMs, headers: { 'content-type': type } },
      (reply) => {
        reply.resume();
        reply.on('end', () => resolve(reply.statusCode === 202));
        reply.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy(new Error('peer did not answer in time')));
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

export function sendWake(base: string, message: WakeMessage): Promise<boolean> {
  return send(
    new URL('/v1/wake', base),
    'POST',
    'application/json',
    JSON.stringify(message),
    WAKE_TIMEOUT_MS,
  );
}

export function sendPush(base: string, object: PushedObject): Promise<boolean> {
  const url = new URL(`/v1/vms/${encodeURIComponent(object.vm)}/final-delta`, base);
  url.search = new URLSearchParams({ order: object.order, key: object.key }).toString();
  return send(url, 'PUT', 'application/octet-stream', object.body, PUSH_TIMEOUT_MS);
}
