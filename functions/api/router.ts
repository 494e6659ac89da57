// Every route module is an OpenAPIHono sub-app built here, so request validation failures take
// the one path to a problem response (app.ts onError).
import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import { validationProblem } from './problem.ts';

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
    },
  });
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
