import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshStores, storeEnv } from '../support/stores.ts';
import { aNode } from './support.ts';

/** An API Gateway HTTP API (payload 2.0) event. */
function httpEvent(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'api.example.com', ...headers },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'r1',
      routeKey: '$default',
      stage: '$default',
      time: '25/Nov/2026:12:00:00 +0000',
      timeEpoch: 0,
    },
    isBase64Encoded: false,
    ...(body !== undefined ? { body } : {}),
  };
}

describe('the Lambda entry', () => {
  let handler: (
    event: unknown,
    context: unknown,
  ) => Promise<{ statusCode: number; body: string; headers?: Record<string, string> }>;
  const saved: Record<string, string | undefined> = {};
  afterAll(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  beforeAll(async () => {
    const clients = await freshStores();
    await aNode(clients, 'n1', { load: 1 });
    // The entry builds its clients at module scope from the environment, as on AWS.
    const env = { ...storeEnv(clients), SEESAW_AUTH: 'gateway' };
    for (const name of Object.keys(env)) saved[name] = process.env[name];
    Object.assign(process.env, env);
    ({ handler } = (await import('../../functions/api/lambda.ts')) as unknown as { handler: typeof handler });
  });

  it('answers /healthz and, trusting the gateway, /v1 routes without a bearer token', async () => {
    const health = await handler(httpEvent('GET', '/healthz'), {});
    expect(health.statusCode).toBe(200);
    const nodes = await handler(httpEvent('GET', '/v1/nodes'), {});
    expect(nodes.statusCode).toBe(200);
    expect(JSON.parse(nodes.body).items.map((n: { id: string }) => n.id)).toEqual(['n1']);
  });

  it('answers a bad request with a problem', async () => {
    const res = await handler(
      httpEvent('POST', '/v1/vms', { 'content-type': 'application/json' }, '{"guest":"nope"}'),
      {},
    );
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).type).toBe('urn:seesaw:problem:validation');
  });
});
