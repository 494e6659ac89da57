// Serves the peer channel (app.ts) on a host and port (0: an ephemeral one) and says its URL.
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type PeerHandlers, peerApp } from './app.ts';

export interface PeerServer {
  /** What the node item advertises, e.g. http://127.0.0.1:41234. */
  url: string;
  close(): Promise<void>;
}

export function startPeerServer(
  listen: { host: string; port?: number },
  handlers: PeerHandlers,
): Promise<PeerServer> {
  const app = peerApp(handlers);
  return new Promise((resolve, reject) => {
    const server = serve(
      { fetch: app.fetch, hostname: listen.host, port: listen.port ?? 0 },
      (info: AddressInfo) => {
        const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
        resolve({
          url: `http://${host}:${info.port}`,
          close: () =>
            new Promise<void>((done) => {
              server.close(() => done());
              (server as { closeAllConnections?: () => void }).closeAllConnections?.();
            }),
        });
      },
    );
    server.once('error', reject);
  });
}
