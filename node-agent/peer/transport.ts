// How an agent reaches its peers: over HTTP in a process (httpPeer), or through whatever the fault
// harness puts in between. An address is what the node item advertises (`peerUrl`).
import type { PeerHandlers, PushedObject, WakeMessage } from './app.ts';
import { sendPush, sendWake } from './client.ts';
import { type PeerServer, startPeerServer } from './server.ts';

export interface PeerTransport {
  /** Starts taking messages for `handlers`; resolves with the address to advertise. */
  listen(handlers: PeerHandlers): Promise<string>;
  /** True when the peer accepted it; a failure of any kind is false (it is only a hint). */
  wake(address: string, message: WakeMessage): Promise<boolean>;
  push(address: string, object: PushedObject): Promise<boolean>;
  /** Stops taking messages. */
  close(): Promise<void>;
}

/** The peer channel over HTTP, served on `host` and `port` (0 or none: an ephemeral port). */
export function httpPeer(listen: { host: string; port?: number }): PeerTransport {
  let server: PeerServer | undefined;
  return {
    async listen(handlers) {
      server ??= await startPeerServer(listen, handlers);
      return server.url;
    },
    wake: sendWake,
    push: sendPush,
    async close() {
      const open = server;
      server = undefined;
      await open?.close();
    },
  };
}

/** `host:port`, `host` (an ephemeral port) or `[v6]:port`, as the agent's --peer-listen takes it. */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = Number(m?.[3] ?? 0);
  if (!m || port > 65_535) throw new Error(`expected host[:port] to listen on, got "${text}"`);
  return { host: (m[1] ?? m[2])!, port };
}
