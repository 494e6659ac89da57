// The AWS entry: the same app behind API Gateway. Clients and Powertools are created once per
// container; 5xx causes go to the Powertools logger with the request's correlation id.
import { handle } from 'hono/aws-lambda';
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { instrumented, observability, SERVICES, traceClients } from '../observability.ts';
import { createApp } from './app.ts';
import { type AuthConfig, apiDeps } from './deps.ts';
import { signInFromEnv } from './operator-auth.ts';
import { PROBLEM_CONTENT_TYPE, type Problem } from './problem.ts';

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
export const handler = instrumented(tools, async (event: Parameters<typeof serve>[0], context) =>
  unreadableAsProblem(await serve(event, context as never)),
);

type Result = Awaited<ReturnType<typeof serve>>;

/**
 * An event the adapter cannot make a Request of (a GET or HEAD with a body, a cookie or header beyond
 * Latin-1) gets the adapter's own bare text/plain 400 before the app sees it. It leaves as the problem
 * every other 400 is; the app's own 400s are problems already and pass as they are.
 */
function unreadableAsProblem(result: Result): Result {
  const type = result.headers?.['content-type'] ?? result.multiValueHeaders?.['content-type']?.[0];
  if (result.statusCode !== 400 || String(type).startsWith(PROBLEM_CONTENT_TYPE)) return result;
  const problem: Problem = {
    type: 'urn:seesaw:problem:bad-request',
    title: 'Bad request',
    status: 400,
    detail: 'the request could not be read (a GET or HEAD with a body, or a header that is not Latin-1)',
  };
  const withType = result.multiValueHeaders
    ? { multiValueHeaders: { ...result.multiValueHeaders, 'content-type': [PROBLEM_CONTENT_TYPE] } }
    : { headers: { ...result.headers, 'content-type': PROBLEM_CONTENT_TYPE } };
  return { ...result, ...withType, body: JSON.stringify(problem), isBase64Encoded: false };
}
