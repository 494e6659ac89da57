// Bearer-token check for every /v1 route (and /ui/v1, its mirror for the dashboard). On AWS
// (`SEESAW_AUTH=gateway`) the HTTP API's own authorizer (IAM on /v1, JWT on /ui/v1) has already
// vouched for the caller, so the app trusts it. Locally with a JWT check, /ui/v1 needs a JWT.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AuthConfig } from './deps.ts';
import { isUiRequest, type JwtCheck } from './operator-auth.ts';
import { ApiProblem } from './problem.ts';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function requireAuth(auth: AuthConfig): MiddlewareHandler {
  if (auth.mode === 'gateway') return async (_c, next) => next();
  if (!auth.token) throw new Error('auth mode "token" needs a non-empty token');
  const expected = digest(auth.token);
  const jwt = auth.jwt;
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (jwt && isUiRequest(c.req.url)) {
      await checkJwt(jwt, match?.[1]);
      return next();
    }
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

async function checkJwt(jwt: JwtCheck, token: string | undefined): Promise<void> {
  // The gateway's authorizer answers 401 with no detail; here the detail helps whoever debugs.
  const reject = (detail: string) => new ApiProblem(401, 'unauthorized', 'Unauthorized', detail);
  if (!token) throw reject('this route needs an Authorization: Bearer <JWT> header from the sign-in');
  try {
    await jwt(token);
  } catch (error) {
    throw reject(`the JWT was not accepted: ${error instanceof Error ? error.message : String(error)}`);
  }
}
