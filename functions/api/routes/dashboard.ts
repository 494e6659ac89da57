// The dashboard: a public page at `/` and its static files under `/dashboard/`, served from
// memory (assets.ts is generated from functions/api/dashboard/). Its data calls go to /v1 with
// the API token, so nothing here needs auth.
import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import { ASSETS } from '../dashboard/assets.ts';

// Scripts, styles and API calls all come from this origin; nothing inline, nothing elsewhere but
// the sign-in provider's token endpoint when the page signs in through one.
const csp = (connect: readonly string[]) =>
  [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    ["connect-src 'self'", ...connect].join(' '),
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');

const served = new Map(
  Object.entries(ASSETS).map(([name, asset]) => [
    name,
    { ...asset, etag: `"${createHash('sha256').update(asset.body).digest('base64url').slice(0, 22)}"` },
  ]),
);

/** The asset's response, or undefined when there is no such file (the app's 404 problem answers). */
function serve(name: string, request: Request, connect: readonly string[] = []): Response | undefined {
  const asset = served.get(name);
  if (!asset) return undefined;
  const headers = {
    'content-type': asset.type,
    etag: asset.etag,
    // Revalidate every time: an ETag round trip is cheap locally, and a new build is seen at once.
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    ...(name === 'index.html' ? { 'content-security-policy': csp(connect) } : {}),
  };
  if (request.headers.get('if-none-match') === asset.etag)
    return new Response(null, { status: 304, headers });
  return new Response(request.method === 'HEAD' ? null : asset.body, { headers });
}

/** The page and its files; `connect` lists the extra origins the page may fetch from. */
export function dashboardRoutes(connect: readonly string[] = []) {
  const routes = new Hono();
  routes.get('/', (c) => serve('index.html', c.req.raw, connect) ?? c.notFound());
  routes.get('/dashboard/:file', (c) => serve(c.req.param('file'), c.req.raw) ?? c.notFound());
  return routes;
}

export const dashboard = dashboardRoutes();
