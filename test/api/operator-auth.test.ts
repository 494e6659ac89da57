// The dashboard's door (/ui/v1) with a JWT check, as `seesaw up --oidc` runs it: a real JWKS over
// HTTP, tokens signed by jose, and the checks the API Gateway JWT authorizer makes.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiPathOf, jwtCheck } from '../../functions/api/operator-auth.ts';
import { anApi, type TestApi, TOKEN } from './support.ts';

const ISSUER = 'https://issuer.example';
const CLIENT = 'seesaw-dashboard';

let server: Server;
let api: TestApi;
let sign: (
  claims: Record<string, unknown>,
  options?: { issuer?: string; expiresIn?: string | number },
) => Promise<string>;
let foreign: typeof sign;

beforeAll(async () => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const other = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  const signer =
    (key: CryptoKey) =>
    async (claims: Record<string, unknown>, options: { issuer?: string; expiresIn?: string | number } = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(options.issuer ?? ISSUER)
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '5m')
        .sign(key);
  sign = signer(privateKey);
  foreign = signer(other.privateKey);
  api = await anApi({
    auth: { mode: 'token', token: TOKEN, jwt: jwtCheck({ issuer: ISSUER, audience: CLIENT, jwksUri }) },
    signIn: {
      issuer: ISSUER,
      clientId: CLIENT,
      authorizationEndpoint: `${ISSUER}/auth`,
      tokenEndpoint: `${ISSUER}/token`,
      scope: 'openid',
    },
  });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('the /ui/v1 mirror', () => {
  it('maps /ui/v1/… onto /v1/… and leaves other paths alone', () => {
    expect(apiPathOf('/ui/v1/nodes')).toBe('/v1/nodes');
    expect(apiPathOf('/ui/v1')).toBe('/v1');
    expect(apiPathOf('/ui/v10/nodes')).toBe('/ui/v10/nodes');
    expect(apiPathOf('/v1/nodes')).toBe('/v1/nodes');
    expect(apiPathOf('/dashboard/app.js')).toBe('/dashboard/app.js');
  });

  it('serves the same routes as /v1 to a JWT from the issuer for this client (ID-token style, aud)', async () => {
    const res = await api.call('GET', '/ui/v1/nodes', bearer(await sign({ aud: CLIENT, sub: 'op' })));
    expect(res.status).toBe(200);
    const direct = await api.call('GET', '/v1/nodes');
    expect(await res.json()).toEqual(await direct.json());
  });

  it('accepts an access token that names the client in client_id and has no aud (as Cognito issues)', async () => {
    const res = await api.call('GET', '/ui/v1/nodes', bearer(await sign({ client_id: CLIENT, sub: 'op' })));
    expect(res.status).toBe(200);
  });

  it.each([
    ['another audience', () => sign({ aud: 'someone-else' })],
    ['no audience at all', () => sign({ sub: 'op' })],
    ['another issuer', () => sign({ aud: CLIENT }, { issuer: 'https://evil.example' })],
    ['an expired token', () => sign({ aud: CLIENT }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })],
    ['a key not in the JWKS', () => foreign({ aud: CLIENT })],
    ['the API token instead of a JWT', async () => TOKEN],
  ])('refuses %s with 401 problem+json, changing nothing', async (_what, token) => {
    const before = await api.snapshot();
    const res = await api.call('PATCH', '/ui/v1/config', {
      ...bearer(await token()),
      body: { cooldownMs: 1 },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await api.snapshot()).toEqual(before);
  });

  it('keeps /v1 on the API token: a JWT does not open it', async () => {
    const res = await api.call('GET', '/v1/nodes', bearer(await sign({ aud: CLIENT })));
    expect(res.status).toBe(401);
  });
});

describe('the page configuration', () => {
  it('tells the page to sign in through the provider and to call /ui/v1', async () => {
    const res = await api.call('GET', '/dashboard/config.json', { auth: false });
    expect(await res.json()).toMatchObject({
      signIn: 'oidc',
      api: '/ui/v1',
      clientId: CLIENT,
      authorizationEndpoint: `${ISSUER}/auth`,
      tokenEndpoint: `${ISSUER}/token`,
    });
  });

  it('lets the page reach the token endpoint and nothing else off its origin', async () => {
    const csp = (await api.call('GET', '/', { auth: false })).headers.get('content-security-policy');
    expect(csp).toContain(`connect-src 'self' ${ISSUER}`);
  });

  it('without a provider, tells the page to use the token and /v1 (the local default)', async () => {
    const plain = await anApi();
    const res = await plain.call('GET', '/dashboard/config.json', { auth: false });
    expect(await res.json()).toEqual({ signIn: 'token', api: '/v1' });
    const csp = (await plain.call('GET', '/', { auth: false })).headers.get('content-security-policy');
    expect(csp).toContain("connect-src 'self';");
  });
});
