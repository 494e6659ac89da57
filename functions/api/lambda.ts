// The AWS entry: the same app behind API Gateway. Clients are created once per container.
import { handle } from 'hono/aws-lambda';
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { createApp } from './app.ts';
import { type AuthConfig, apiDeps } from './deps.ts';
import { signInFromEnv } from './operator-auth.ts';

const clients = createClients(storageConfigFromEnv());

function authFromEnv(env: NodeJS.ProcessEnv): AuthConfig {
  if (env.SEESAW_AUTH === 'gateway') return { mode: 'gateway' };
  if (env.SEESAW_TOKEN) return { mode: 'token', token: env.SEESAW_TOKEN };
  throw new Error('set SEESAW_AUTH=gateway (API Gateway authorises) or SEESAW_TOKEN');
}

const signIn = signInFromEnv(process.env);
export const handler = handle(
  createApp(apiDeps({ clients, auth: authFromEnv(process.env), ...(signIn ? { signIn } : {}) })),
);
