// The dashboard's door, /ui/v1/*: the same routes as /v1/*, for an operator who signed in through
// OpenID Connect (the stack's Cognito user pool; locally, any provider with `seesaw up --oidc`).
// On AWS the API Gateway's JWT authorizer checks the token; locally `jwtCheck` does what it does:
// a signature from the issuer's JWKS, the issuer, `aud` or `client_id` equal to the dashboard's
// client id, and the expiry.
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';

/** Where a request for /ui/v1/x is served: the /v1/x route, by the same app. */
export const UI_PREFIX = '/ui';

/** Maps /ui/v1/… to /v1/…, leaving every other path alone. */
export function apiPathOf(path: string): string {
  return path === `${UI_PREFIX}/v1` || path.startsWith(`${UI_PREFIX}/v1/`)
    ? path.slice(UI_PREFIX.length)
    : path;
}

/** True for a request that came in through the dashboard's door. */
export const isUiRequest = (url: string) => apiPathOf(new URL(url).pathname) !== new URL(url).pathname;

/** What the page needs to sign in; served at /dashboard/config.json. */
export interface SignInConfig {
  issuer: string;
  clientId: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** Cognito's hosted sign-out page; absent for providers without one. */
  logoutEndpoint?: string;
  scope: string;
}

/** Resolves with the token's claims, or rejects (bad signature, issuer, audience, expired). */
export type JwtCheck = (token: string) => Promise<JWTPayload>;

export class JwtRejected extends Error {
  override readonly name = 'JwtRejected';
}

/** Verifies as an API Gateway JWT authorizer does, with keys from `jwksUri` (cached by jose). */
export function jwtCheck(options: { issuer: string; audience: string; jwksUri: string }): JwtCheck {
  const keys = createRemoteJWKSet(new URL(options.jwksUri));
  return async (token) => {
    const { payload } = await jwtVerify(token, keys, { issuer: options.issuer, algorithms: ['RS256'] });
    // Cognito access tokens carry the client in `client_id` and have no `aud`; ID tokens the reverse.
    const audiences = [payload.aud ?? [], payload.client_id ?? []].flat();
    if (!audiences.includes(options.audience)) {
      throw new JwtRejected(`the token is for ${JSON.stringify(audiences)}, not this dashboard`);
    }
    return payload;
  };
}

/** The provider's endpoints from its discovery document (`<issuer>/.well-known/openid-configuration`). */
export async function discover(
  issuer: string,
  clientId: string,
): Promise<{ signIn: SignInConfig; jwksUri: string }> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`OIDC discovery at ${url} answered ${res.status}`);
  const doc = (await res.json()) as Record<string, unknown>;
  const field = (name: string) => {
    const value = doc[name];
    if (typeof value !== 'string') throw new Error(`OIDC discovery at ${url} has no ${name}`);
    return value;
  };
  if (field('issuer') !== issuer) {
    throw new Error(`OIDC discovery at ${url} names issuer ${field('issuer')}, not ${issuer}`);
  }
  return {
    signIn: {
      issuer,
      clientId,
      authorizationEndpoint: field('authorization_endpoint'),
      tokenEndpoint: field('token_endpoint'),
      ...(typeof doc.end_session_endpoint === 'string' ? { logoutEndpoint: doc.end_session_endpoint } : {}),
      scope: 'openid',
    },
    jwksUri: field('jwks_uri'),
  };
}

/** On AWS: the user pool's endpoints, from the variables the stack sets; undefined without them. */
export function signInFromEnv(env: NodeJS.ProcessEnv): SignInConfig | undefined {
  const { SEESAW_OIDC_ISSUER, SEESAW_OIDC_CLIENT_ID, SEESAW_OIDC_AUTHORIZE_URL, SEESAW_OIDC_TOKEN_URL } = env;
  if (!SEESAW_OIDC_ISSUER || !SEESAW_OIDC_CLIENT_ID || !SEESAW_OIDC_AUTHORIZE_URL || !SEESAW_OIDC_TOKEN_URL)
    return undefined;
  return {
    issuer: SEESAW_OIDC_ISSUER,
    clientId: SEESAW_OIDC_CLIENT_ID,
    authorizationEndpoint: SEESAW_OIDC_AUTHORIZE_URL,
    tokenEndpoint: SEESAW_OIDC_TOKEN_URL,
    ...(env.SEESAW_OIDC_LOGOUT_URL ? { logoutEndpoint: env.SEESAW_OIDC_LOGOUT_URL } : {}),
    scope: 'openid email',
  };
}
