// The dashboard's page tests over a real API and table with no agents: fresh stores seeded with a
// cluster, the API on a free port behind a token, and Chromium to open it in.
import { afterAll, beforeAll } from 'vitest';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { type Browser, launchBrowser } from '../browser/browser.ts';
import { type NodeFixture, seedCluster } from './balancer-cluster.ts';
import { freshStores } from './stores.ts';

export interface SeededDashboard {
  clients: Clients;
  api: ApiServer;
  browser: Browser;
  close(): Promise<void>;
}

/** Seeds `nodes` (then `prepare`, at the same `now`), serves the API with `token` and opens Chromium. */
export async function seededDashboard(
  token: string,
  nodes: NodeFixture[],
  prepare: (clients: Clients, now: number) => Promise<unknown> = async () => {},
): Promise<SeededDashboard> {
  const clients = await freshStores();
  const now = Date.now();
  await seedCluster(clients, now, nodes);
  await prepare(clients, now);
  const api = await startApiServer({ clients, token, port: 0 });
  const browser = await launchBrowser().catch(async (error) => {
    await api.close();
    throw error;
  });
  return {
    clients,
    api,
    browser,
    async close() {
      await browser.close();
      await api.close();
    },
  };
}

/** `seededDashboard` for a suite: opened in the suite's beforeAll, closed after it. */
export function seededDashboardForSuite(...args: Parameters<typeof seededDashboard>): SeededDashboard {
  const dash = {} as SeededDashboard;
  beforeAll(async () => {
    Object.assign(dash, await seededDashboard(...args));
  }, 60_000);
  afterAll(() => dash.close?.());
  return dash;
}
