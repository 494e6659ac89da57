// A live local cluster and a Chromium page on it, for a browser suite: both opened before its tests
// and closed after them.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { freshStores } from '../support/stores.ts';
import { type Browser, launchBrowser } from './browser.ts';
import { type LocalCluster, type NodeSetup, startLocalCluster } from './cluster.ts';

export interface ClusterPage {
  cluster: LocalCluster;
  page: Page;
}

/** A local cluster of `nodes` on fresh stores, `seed`ed, and a Chromium page: opened in the suite's beforeAll, closed after it. */
export function clusterWithPage(
  nodes: readonly NodeSetup[],
  seed: (cluster: LocalCluster) => Promise<void>,
): ClusterPage {
  const suite = {} as ClusterPage;
  let browser: Browser | undefined;
  beforeAll(async () => {
    suite.cluster = await startLocalCluster(await freshStores(), nodes);
    await seed(suite.cluster);
    browser = await launchBrowser();
    suite.page = await browser.page();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await suite.cluster?.stop();
  }, 60_000);
  return suite;
}
