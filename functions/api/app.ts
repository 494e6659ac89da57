// The Seesaw HTTP API: one Hono app built from route modules. Auth and idempotency guard /v1;
// every error leaves through onError as an application/problem+json response.
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { getPath } from 'hono/utils/url';
import { requireAuth } from './auth.ts';
import type { ApiDeps } from './deps.ts';
import { idempotency } from './idempotency.ts';
import { apiPathOf } from './operator-auth.ts';
import { ApiProblem, problemResponse, toProblem } from './problem.ts';
import { balanceRoutes } from './routes/balance.ts';
import { clusterRoutes } from './routes/cluster.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { imageRoutes } from './routes/images.ts';
import { moduleRoutes } from './routes/modules.ts';
import { nodeRoutes } from './routes/nodes.ts';
import { planRoutes } from './routes/plans.ts';
import { vmRoutes } from './routes/vms.ts';

/** Largest request body accepted (a guest module or qemu image upload is the big one). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

export function createApp(deps: ApiDeps) {
  // /ui/v1/… (the dashboard's door, JWT-authorised on AWS) runs the very /v1/… routes.
  const app = new OpenAPIHono({ getPath: (request) => apiPathOf(getPath(request)) });

  app.onError((error, c) => {
    const problem = toProblem(error);
    if (problem.status >= 500) deps.logError(error);
    return problemResponse(c, problem);
  });
  app.notFound((c) =>
    problemResponse(
      c,
      new ApiProblem(404, 'not-found', 'Not found', `no route for ${c.req.method} ${c.req.path}`),
    ),
  );

  app.use(
    '/v1/*',
    requireAuth(deps.auth),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiProblem(
          413,
          'too-large',
          'Payload too large',
          `request bodies are limited to ${MAX_BODY_BYTES} bytes`,
        );
      },
    }),
    idempotency(deps),
  );

  // Chained, so the app's type carries every operation: bin/client.ts is typed from it.
  const api = app
    .route('/', vmRoutes(deps))
    .route('/', moduleRoutes(deps))
    .route('/', imageRoutes(deps))
    .route('/', nodeRoutes(deps))
    .route('/', balanceRoutes(deps))
    .route('/', planRoutes(deps))
    .route('/', clusterRoutes(deps));
  // What the page signs in with: the token (and /v1), or an OIDC provider (and /ui/v1).
  app.get('/dashboard/config.json', (c) =>
    c.json(deps.signIn ? { signIn: 'oidc', api: '/ui/v1', ...deps.signIn } : { signIn: 'token', api: '/v1' }),
  );
  // Public page and assets; the page may fetch tokens from the sign-in provider's token endpoint.
  app.route('/', dashboardRoutes(deps.signIn ? [new URL(deps.signIn.tokenEndpoint).origin] : []));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'The token from .seesaw/token (or SEESAW_TOKEN). On AWS the API Gateway authorises instead.',
  });
  app.doc('/openapi.json', {
    openapi: '3.0.3',
    info: {
      title: 'Seesaw',
      version: '0.1.0',
      description: 'VM load balancing across a cluster of hosts, after the pairwise half-difference method.',
    },
  });
  return api;
}

/** The app's type: every operation with its request and response schemas, for Hono's typed client. @public */
export type ApiApp = ReturnType<typeof createApp>;
