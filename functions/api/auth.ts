// Bearer-token check for every /v1 route. On AWS (`SEESAW_AUTH=gateway`) the HTTP API's own
// authorizer has already vouched for the caller, so the app trusts it.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AuthConfig } from './deps.ts';
import { ApiProblem } from './problem.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function requireAuth(auth: AuthConfig): MiddlewareHandler {
  if (auth.mode === 'gateway') return async (_c, next) => next();
  if (!auth.token) throw new Error('auth mode "token" needs a non-empty token');
  const expected = digest(auth.token);
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    // Hashing both sides makes the comparison constant-time whatever the lengths.
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) {
      c.header('WWW-Authenticate', 'Bearer realm="seesaw"');
      throw new ApiProblem(
        401,
        'unauthorized',
        'Unauthorized',
        header
          ? 'the bearer token is not valid for this API'
          : 'this route needs an Authorization: Bearer <token> header (see .seesaw/token)',
      );
    }
    await next();
  };
}
