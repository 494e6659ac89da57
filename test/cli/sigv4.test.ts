// IAM mode: the CLI signs every request with the SDK's SigV4 signer. The signatures are checked
// against the AWS SigV4 test suite and against a second, independent implementation (aws4).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import aws4 from 'aws4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSigner } from '../../bin/sigv4.ts';
import { seesaw } from './support.ts';

// The credentials of the AWS SigV4 test suite (docs.aws.amazon.com, "Signature Version 4 test suite").
const SUITE = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

/** aws4's Authorization for exactly these headers, signed at `amzDate` (aws4 would take the clock). */
function aws4Authorization(request: aws4.Request, credentials: aws4.Credentials, amzDate: string) {
  const signer = new aws4.RequestSigner({ ...request, doNotModifyHeaders: true }, credentials);
  (signer as unknown as { datetime: string }).datetime = amzDate;
  return signer.sign().headers?.Authorization;
}

describe('SigV4 signing', () => {
  it("signs the test suite's get-vanilla request to its published signature", async () => {
    const sign = createSigner('us-east-1', SUITE, 'service');
    const headers = await sign(
      { method: 'GET', url: 'https://example.amazonaws.com/', headers: {} },
      new Date('2015-08-30T12:36:00Z'),
    );
    expect(headers['x-amz-date']).toBe('20150830T123600Z');
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, ' +
        'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('agrees with the aws4 library on an execute-api POST with a body, a query and a session token', async () => {
    const credentials = { ...SUITE, sessionToken: 'a-session-token' };
    const body = JSON.stringify({ guest: 'cpu', targetLoad: 0.5 });
    const sign = createSigner('eu-west-1', credentials);
    const ours = await sign(
      {
        method: 'POST',
        url: 'https://abc123.execute-api.eu-west-1.amazonaws.com/v1/vms?limit=5&cursor=a%20b',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' },
        body,
      },
      new Date('2026-11-30T10:00:00Z'),
    );
    const theirs = aws4Authorization(
      {
        host: 'abc123.execute-api.eu-west-1.amazonaws.com',
        method: 'POST',
        path: '/v1/vms?limit=5&cursor=a%20b',
        service: 'execute-api',
        region: 'eu-west-1',
        body,
        headers: {
          host: 'abc123.execute-api.eu-west-1.amazonaws.com',
          'content-type': 'application/json',
          'idempotency-key': 'k-1',
          'x-amz-date': '20261130T100000Z',
          'x-amz-security-token': 'a-session-token',
        },
      },
      credentials,
      '20261130T100000Z',
    );
    expect(ours['x-amz-security-token']).toBe('a-session-token');
    expect(ours.authorization).toBe(theirs);
  });
});

/** Recomputes the request's signature with aws4 from what arrived on the wire. */
function verifiedByAws4(req: IncomingMessage, body: string, region: string): boolean {
  const authorization = req.headers.authorization ?? '';
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  if (!signedHeaders.includes('host') || !signedHeaders.includes('x-amz-date')) return false;
  const headers = Object.fromEntries(signedHeaders.map((h) => [h, String(req.headers[h] ?? '')]));
  const expected = aws4Authorization(
    {
      host: req.headers.host,
      method: req.method,
      path: req.url,
      service: 'execute-api',
      region,
      ...(body ? { body } : {}),
      headers,
    },
    SUITE,
    headers['x-amz-date'] ?? '',
  );
  return expected === authorization;
}

describe('the CLI in IAM mode', () => {
  let server: Server;
  let api: string;
  const seen: { method: string; url: string; verified: boolean; bearer: boolean }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        const verified = verifiedByAws4(req, body, 'eu-west-1');
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          verified,
          bearer: /^Bearer /.test(req.headers.authorization ?? ''),
        });
        res.setHeader('content-type', 'application/json');
        if (!verified || req.url?.startsWith('/v1/nodes/forbidden')) {
          res.statusCode = 403;
          res.end(JSON.stringify({ message: 'Forbidden' }));
        } else if (req.url?.startsWith('/v1/vms')) res.end(JSON.stringify({ items: [], next: null }));
        else res.end(JSON.stringify({ id: 'n1', draining: JSON.parse(body || '{}').draining ?? false }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const awsEnv = {
    AWS_ACCESS_KEY_ID: SUITE.accessKeyId,
    AWS_SECRET_ACCESS_KEY: SUITE.secretAccessKey,
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_REGION: 'eu-west-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };

  it('signs GETs and PATCHes with a body so that an independent verifier accepts them', async () => {
    seen.length = 0;
    const list = await seesaw(['vm', 'ls', '--json', '--api', api, '--auth', 'iam'], { env: awsEnv });
    expect(list.stderr).toBe('');
    expect(JSON.parse(list.stdout)).toEqual([]);
    const drain = await seesaw(['--api', api, '--auth', 'iam', 'nodes', 'drain', 'n1', '--json'], {
      env: awsEnv,
    });
    expect(drain.stderr).toBe('');
    expect(JSON.parse(drain.stdout)).toEqual({ id: 'n1', draining: true });
    expect(seen).toEqual([
      { method: 'GET', url: '/v1/vms?limit=500', verified: true, bearer: false },
      { method: 'PATCH', url: '/v1/nodes/n1', verified: true, bearer: false },
    ]);
  });

  it('chooses IAM by itself for a URL that is not loopback (SEESAW_AUTH aside)', async () => {
    // An unresolvable non-loopback host: the CLI must still sign (it fails to connect, not to find a token).
    const out = await seesaw(['cluster', '--api', 'https://seesaw.invalid'], { env: awsEnv });
    expect(out.code).toBe(1);
    expect(out.stderr.trim()).toBe('seesaw: cannot reach the API at https://seesaw.invalid (from --api)');
  });

  it('explains a 403 in one line and exits 1', async () => {
    const out = await seesaw(['nodes', 'show', 'forbidden', '--api', api, '--auth', 'iam'], {
      env: awsEnv,
    });
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    const lines = out.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^seesaw: 403 Forbidden: the API at http:\/\/127\.0\.0\.1:\d+ refused the SigV4-signed request/,
    );
    expect(lines[0]).toMatch(/execute-api:Invoke/);
    expect(lines[0]).toMatch(/region eu-west-1/);
  });

  it('a wrong secret is refused by the verifier, so the check above can fail', async () => {
    const out = await seesaw(['vm', 'ls', '--api', api, '--auth', 'iam'], {
      env: { ...awsEnv, AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
    });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^seesaw: 403 Forbidden/);
  });
});
