// The AWS entry: the same app behind API Gateway. Clients and Powertools are created once per
// container; 5xx causes go to the Powertools logger with the request's correlation id.
import { handle } from 'hono/aws-lambda';
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { instrumented, observability, SERVICES, traceClients } from '../observability.ts';
import { createApp } from './app.ts';
import { type AuthConfig, apiDeps } from './deps.ts';
import { signInFromEnv } from './operator-auth.ts';

const tools = observability(SERVICES.api);
const clients = traceClients(tools.tracer, createClients(storageConfigFromEnv()));

function authFromEnv(env: NodeJS.ProcessEnv): AuthConfig {
  if (env.SEESAW_AUTH === 'gateway') return { mode: 'gateway' };
  if (env.SEESAW_TOKEN) return { mode: 'token', token: env.SEESAW_TOKEN };
  throw new Error('set SEESAW_AUTH=gateway (API Gateway authorises) or SEESAW_TOKEN');
}

const signIn = signInFromEnv(process.env);
const app = createApp(
  apiDeps({
    clients,
    auth: authFromEnv(process.env),
    logError: (error) => tools.logger.error('api error', error as Error),
    ...(signIn ? { signIn } : {}),
  }),
);
const serve = handle(app);
export const handler = instrumented(tools, (event: Parameters<typeof serve>[0], context) =>
  serve(event, context as never),
);
