// The dashboard's only way to the API: same origin, Bearer token from the browser session (or,
// once sign-in.js has signed the operator in, their JWT, sent to the /ui/v1 mirror of /v1).

const KEY = 'seesaw.token';

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
  }
}

/** Takes `?token=` from the address once, keeps it for the session, and removes it from the address bar. */
export function adoptTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  if (token === null) return;
  url.searchParams.delete('token');
  history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  if (token) sessionStorage.setItem(KEY, token);
}

export const getToken = () => sessionStorage.getItem(KEY);
export const setToken = (token) => sessionStorage.setItem(KEY, token);
export const clearToken = () => sessionStorage.removeItem(KEY);

let base = '/v1';
let tokenSource = async () => getToken();

/** Sends /v1 calls to `apiBase` instead, with the bearer token `source` resolves to. */
export function useSignIn(apiBase, source) {
  base = apiBase;
  tokenSource = source;
}

export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${(await tokenSource()) ?? ''}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST' && globalThis.crypto?.randomUUID) headers['idempotency-key'] = crypto.randomUUID();
  const res = await fetch(path.startsWith('/v1/') ? base + path.slice(3) : path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { title: text.slice(0, 200) };
  }
  if (!res.ok) {
    throw new ApiError(res.status, data?.title ?? `HTTP ${res.status}`, data?.detail);
  }
  return data;
}

/** A list response, whatever the route calls its array. */
export function items(data) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== 'object') return [];
  for (const key of ['items', 'nodes', 'vms', 'runs', 'migrations']) {
    if (Array.isArray(data[key])) return data[key];
  }
  return [];
}
