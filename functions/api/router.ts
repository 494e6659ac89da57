// Every route module is an OpenAPIHono sub-app built here, so request validation failures take
// the one path to a problem response (app.ts onError).
import { OpenAPIHono } from '@hono/zod-openapi';
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
export const bearerSecurity = [{ bearerAuth: [] }];
