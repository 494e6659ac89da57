// Every route module is an OpenAPIHono sub-app built here, so request validation failures take
// the one path to a problem response (app.ts onError).
import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import { ApiProblem, validationProblem } from './problem.ts';

const WHERE: Record<string, string> = {
  json: 'body',
  query: 'query string',
  param: 'path',
  header: 'headers',
  form: 'form',
  cookie: 'cookies',
};

export function newRouter() {
  return new OpenAPIHono({
    defaultHook: (result) => {
      if (!result.success) throw validationProblem(result.error, WHERE[result.target] ?? result.target);
      if (result.target === 'json') refuseUnstorableNumbers(result.data);
    },
  });
}

/**
 * The table keeps numbers of magnitude 1e-130 (DynamoDB's least) to 2^53 - 1 (the SDK's marshaller
 * refuses more, as it could not read them back exactly), and 0. A schema's bounds still let doubles
 * outside that through (5e-324 where min is 0, 1e300 where there is no max), and the write would then
 * fail as a 500 after the request was accepted: they are a 400 here, before any handler runs.
 */
function refuseUnstorableNumbers(body: unknown): void {
  const path = unstorableNumberIn(body, []);
  if (!path) return;
  const at = path.length ? path.join('.') : '(root)';
  const message = 'a number must be 0 or of magnitude 1e-130 to 2^53 - 1';
  throw new ApiProblem(400, 'validation', 'Invalid request', `invalid body: ${at}: ${message}`, {
    errors: [{ path: at, message }],
  });
}

/** The path of the first number DynamoDB cannot store, if any. */
function unstorableNumberIn(value: unknown, path: string[]): string[] | undefined {
  if (typeof value === 'number') {
    const size = Math.abs(value);
    return size !== 0 && (size < 1e-130 || size > Number.MAX_SAFE_INTEGER) ? path : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const found = unstorableNumberIn(inner, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

/** Security requirement attached to every /v1 route in the OpenAPI document. */
const bearerSecurity = [{ bearerAuth: [] }];

type RouteBody<P extends string> = Omit<RouteConfig, 'path' | 'tags' | 'security'> & { path: P };

/** `createRoute` for the routes of one tag group, each behind the bearer token (`open` ones not). */
export function routesOf(tag: string) {
  const tags = [tag];
  const route = <P extends string, R extends RouteBody<P>>(config: R) =>
    createRoute<P, R & { tags: string[]; security: typeof bearerSecurity }>({
      ...config,
      tags,
      security: bearerSecurity,
    });
  route.open = <P extends string, R extends RouteBody<P>>(config: R) =>
    createRoute<P, R & { tags: string[] }>({ ...config, tags });
  return route;
}
