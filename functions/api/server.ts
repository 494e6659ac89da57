// The local entry: serves the API app with @hono/node-server (default 127.0.0.1:8787, PORT overrides).
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { Clients } from '../../shared/storage/clients.ts';
import { createApp } from './app.ts';
import { type ApiDeps, type AuthConfig, apiDeps } from './deps.ts';

export const DEFAULT_API_HOST = '127.0.0.1';
export const DEFAULT_API_PORT = 8787;

export interface ApiServerOptions extends Partial<Omit<ApiDeps, 'clients' | 'auth'>> {
  clients: Clients;
  /** The bearer token /v1 requires; or pass `auth` to choose the mode. */
  token?: string;
  auth?: AuthConfig;
  /** Default PORT from the environment, else 8787; 0 picks a free port. */
  port?: number;
  host?: string;
}

export interface ApiServer {
  /** e.g. http://127.0.0.1:8787 */
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { clients, token, auth, port, host, ...rest } = options;
  const chosenAuth: AuthConfig | undefined = auth ?? (token ? { mode: 'token', token } : undefined);
  if (!chosenAuth) throw new Error('startApiServer needs a token (or auth: { mode: "gateway" })');
  const app = createApp(apiDeps({ clients, auth: chosenAuth, ...rest }));
  const listenPort = port ?? (process.env.PORT ? Number(process.env.PORT) : DEFAULT_API_PORT);
  const listenHost = host ?? DEFAULT_API_HOST;
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: listenPort, hostname: listenHost }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${listenHost}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // Idle keep-alive sockets would hold close() open.
        if ('closeIdleConnections' in server) server.closeIdleConnections();
      }),
  };
}
