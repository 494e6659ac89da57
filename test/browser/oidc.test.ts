// The operator's sign-in, for real: `seesaw up --oidc` against a local OpenID Connect provider
// (oidc-provider, its development login pages), the dashboard in Chromium. The page signs in with
// the code flow and PKCE, calls /ui/v1 with the JWT (checked by the API against the provider's
// JWKS), shows the cluster, and refreshes its tokens before they lapse.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider from 'oidc-provider';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startSeesawUp, stopSeesawUp } from '../support/seesaw-up.ts';
import { type Browser, launchBrowser } from './browser.ts';

const CLIENT = 'seesaw-dashboard';
const NODES = 2;
const VMS = 2;
/** Short-lived tokens: the page refreshes a minute before expiry, so within seconds here. */
const TOKEN_TTL_S = 70;

async function startProvider(dashboardOrigin: string): Promise<{ issuer: string; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT,
        token_endpoint_auth_method: 'none',
        redirect_uris: [`${dashboardOrigin}/`],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
    ],
    // The page exchanges and refreshes its code from its own origin.
    clientBasedCORS: (_ctx, origin) => origin === dashboardOrigin,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: TOKEN_TTL_S,
      IdToken: TOKEN_TTL_S,
      RefreshToken: 3600,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
    },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: `${sub}@example.com` }),
    }),
    cookies: { keys: ['seesaw-test-cookie-key'] },
  });
  server.on('request', provider.callback());
  return { issuer, server };
}

const storedTokens = (page: Page) =>
  page.evaluate(() => JSON.parse(sessionStorage.getItem('seesaw.oidc.tokens') ?? 'null')) as Promise<{
    idToken: string;
    refreshToken?: string;
    expiresAt: number;
  } | null>;

describe('the dashboard signed in through OpenID Connect (`seesaw up --oidc`)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'seesaw-oidc-'));
  let provider: { issuer: string; server: Server };
  let child: ChildProcess | undefined;
  let dashboard: string;
  let browser: Browser;
  let page: Page;
  const apiCalls: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    provider = await startProvider(`http://127.0.0.1:${port}`);
    ({ child, dashboard } = await startSeesawUp(
      ['--port', String(port), '--oidc', provider.issuer, '--nodes', String(NODES), '--vms', String(VMS)],
      dataDir,
    ));
    browser = await launchBrowser();
    page = await browser.page();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.origin === new URL(dashboard).origin && /^\/(ui\/)?v1\//.test(url.pathname))
        apiCalls.push(url.pathname);
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stopSeesawUp(child);
    await new Promise((resolve) => provider?.server.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('prints a dashboard URL without the API token in it', () => {
    expect(dashboard).toBe(`${new URL(dashboard).origin}/`);
  });

  it('sends the operator to the provider, and back signed in, where the cluster shows', async () => {
    await page.goto(dashboard);
    await page.waitForURL((url) => url.origin === provider.issuer, { timeout: 30_000 });
    await page.fill('input[name="login"]', 'operator');
    await page.fill('input[name="password"]', 'any');
    await page.click('button[type="submit"]');
    // The development provider asks for consent once per client.
    await page.waitForSelector('button[type="submit"]', { timeout: 30_000 });
    if (new URL(page.url()).origin === provider.issuer) await page.click('button[type="submit"]');
    await page.waitForURL((url) => url.origin === new URL(dashboard).origin, { timeout: 30_000 });

    await expect.poll(() => page.locator('[data-node]').count(), { timeout: 30_000 }).toBe(NODES);
    await expect.poll(() => page.locator('[data-node] [data-vm]').count(), { timeout: 30_000 }).toBe(VMS);
    // The code and state are gone from the address; the tokens live in this tab's session storage.
    expect(new URL(page.url()).search).toBe('');
    const tokens = await storedTokens(page);
    expect(tokens?.idToken.split('.')).toHaveLength(3);
  }, 90_000);

  it('calls the /ui/v1 mirror with the JWT, never /v1', () => {
    expect(apiCalls.length).toBeGreaterThan(0);
    expect(apiCalls.filter((p) => !p.startsWith('/ui/v1/'))).toEqual([]);
  });

  it('is refused by the API without the JWT, and with the JWT on the token-guarded /v1', async () => {
    const tokens = await storedTokens(page);
    const origin = new URL(dashboard).origin;
    const status = (path: string, token?: string) =>
      fetch(`${origin}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {}).then(
        (r) => r.status,
      );
    expect(await status('/ui/v1/nodes')).toBe(401);
    expect(await status('/ui/v1/nodes', 'not-a-jwt')).toBe(401);
    expect(await status('/v1/nodes', tokens?.idToken)).toBe(401);
    expect(await status('/ui/v1/nodes', tokens?.idToken)).toBe(200);
  });

  it('refreshes its tokens before they expire and stays live', async () => {
    const first = await storedTokens(page);
    expect(first?.refreshToken).toBeTruthy();
    await expect
      .poll(async () => (await storedTokens(page))?.idToken !== first?.idToken, { timeout: 30_000 })
      .toBe(true);
    const callsBefore = apiCalls.length;
    await expect.poll(() => apiCalls.length, { timeout: 10_000 }).toBeGreaterThan(callsBefore);
    await expect.poll(() => page.locator('#live').textContent(), { timeout: 10_000 }).toBe('live');
  }, 60_000);
});
