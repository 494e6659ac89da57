// Operator sign-in for the dashboard when the API names an OpenID Connect provider (the stack's
// Cognito user pool on AWS; `seesaw up --oidc` locally): the authorization-code flow with PKCE,
// tokens kept in session storage, refreshed before they expire. Without a provider the page keeps
// the API token (api.js) and none of this runs.
import { useSignIn } from './api.js';

const TOKENS = 'seesaw.oidc.tokens';
const PENDING = 'seesaw.oidc.pending';
/** Refresh this long before expiry, so a poll never carries a token about to lapse. */
const EARLY_MS = 60_000;

let config = null;
let refreshing = null;

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const randomString = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
const redirectUri = () => `${location.origin}/`;

const readTokens = () => JSON.parse(sessionStorage.getItem(TOKENS) ?? 'null');
function keepTokens(answer, previous) {
  const tokens = {
    idToken: answer.id_token ?? previous?.idToken,
    accessToken: answer.access_token,
    refreshToken: answer.refresh_token ?? previous?.refreshToken,
    expiresAt: Date.now() + Number(answer.expires_in ?? 300) * 1000,
  };
  sessionStorage.setItem(TOKENS, JSON.stringify(tokens));
  return tokens;
}

async function tokenRequest(params) {
  const res = await fetch(config.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: config.clientId, ...params }),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok)
    throw new Error(answer.error_description ?? answer.error ?? `token endpoint answered ${res.status}`);
  return answer;
}

/** Sends the browser to the provider's sign-in page; it comes back to / with a code. */
export async function signIn() {
  const verifier = randomString();
  const state = randomString();
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state }));
  const url = new URL(config.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: config.clientId,
    redirect_uri: redirectUri(),
    scope: config.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

export function signOut() {
  sessionStorage.removeItem(TOKENS);
  if (config?.logoutEndpoint) {
    // Cognito's hosted sign-out ends the provider's session too, then returns here.
    const url = new URL(config.logoutEndpoint);
    url.search = new URLSearchParams({ client_id: config.clientId, logout_uri: redirectUri() }).toString();
    location.assign(url.toString());
  } else void signIn();
}

/** The token the API's JWT authorizer checks (its `aud` is this client), refreshed when due. */
async function currentToken() {
  const tokens = readTokens();
  if (!tokens) return null;
  if (Date.now() < tokens.expiresAt - EARLY_MS || !tokens.refreshToken) return tokens.idToken;
  refreshing ??= tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.refreshToken })
    .then((answer) => keepTokens(answer, tokens).idToken)
    .catch(() => {
      sessionStorage.removeItem(TOKENS);
      return null;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Finishes a sign-in the provider just sent back (?code=…&state=…), and cleans the address. */
async function completeRedirect() {
  const url = new URL(location.href);
  const code = url.searchParams.get('code');
  const state = url.searchParams.get('state');
  const error = url.searchParams.get('error');
  if (!code && !error) return;
  for (const name of ['code', 'state', 'error', 'error_description', 'session_state', 'iss'])
    url.searchParams.delete(name);
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? 'null');
  sessionStorage.removeItem(PENDING);
  if (error) throw new Error(`sign-in failed: ${error}`);
  if (!pending || pending.state !== state) throw new Error('sign-in answer does not match this tab');
  const answer = await tokenRequest({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri(),
    code_verifier: pending.verifier,
  });
  keepTokens(answer, null);
}

/**
 * Reads the page configuration. With a provider: finishes a returning sign-in, points api.js at
 * /ui/v1 with the signed-in token, and says whether the operator is signed in.
 */
export async function startSignIn() {
  const res = await fetch('/dashboard/config.json', { cache: 'no-store' });
  const page = res.ok ? await res.json() : { signIn: 'token' };
  if (page.signIn !== 'oidc') return { mode: 'token' };
  config = page;
  useSignIn(page.api, currentToken);
  await completeRedirect();
  return { mode: 'oidc', signedIn: Boolean(readTokens()) };
}
