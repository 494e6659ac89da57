// Where the CLI finds its cluster and how it authenticates: flags, environment, the data directory
// found by walking up, the user config, and a CloudFormation stack's outputs (SDK mocked at the
// client boundary).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CloudFormationClient,
  DescribeStacksCommand,
  type Output,
  type StackStatus,
} from '@aws-sdk/client-cloudformation';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { findClusterDir, resolveConnection, userConfigPath, writeUserConfig } from '../../bin/connection.ts';
import { scratchDir } from './support.ts';

const cfn = mockClient(CloudFormationClient);
afterEach(() => cfn.reset());

/** A data directory as `seesaw up` leaves it. */
function aClusterDir(parent: string, api = 'http://127.0.0.1:9999', token = 'tok') {
  const dir = join(parent, '.seesaw');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'endpoints.json'), JSON.stringify({ api }));
  writeFileSync(join(dir, 'token'), `${token}\n`);
  return dir;
}

/** What DescribeStacks answers for one stack with these outputs. */
const aStack = (StackName: string, StackStatus: StackStatus, Outputs: Output[]) => ({
  Stacks: [{ StackName, CreationTime: new Date(), StackStatus, Outputs }],
});

const noEnv = (extra: Record<string, string> = {}) => ({ XDG_CONFIG_HOME: scratchDir('cfg-'), ...extra });

describe('--stack', () => {
  const url = 'https://abc123.execute-api.eu-west-1.amazonaws.com/';

  it("reads the API URL from the stack's ApiUrl output and signs with IAM in the URL's region", async () => {
    cfn.on(DescribeStacksCommand, { StackName: 'Seesaw' }).resolves(
      aStack('Seesaw', 'CREATE_COMPLETE', [
        { OutputKey: 'TableName', OutputValue: 'seesaw-table' },
        { OutputKey: 'ApiUrl', OutputValue: url },
      ]),
    );
    const connection = await resolveConnection(
      { stack: 'Seesaw' },
      { env: noEnv({ AWS_REGION: 'us-east-2' }), cwd: scratchDir() },
    );
    expect(connection).toEqual({
      api: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
      via: 'stack Seesaw',
      auth: 'iam',
      region: 'eu-west-1',
    });
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(1);
  });

  it('takes the stack name from SEESAW_STACK', async () => {
    cfn
      .on(DescribeStacksCommand, { StackName: 'Other' })
      .resolves(aStack('Other', 'UPDATE_COMPLETE', [{ OutputKey: 'ApiUrl', OutputValue: url }]));
    const connection = await resolveConnection(
      {},
      { env: noEnv({ SEESAW_STACK: 'Other', AWS_REGION: 'eu-west-1' }), cwd: scratchDir() },
    );
    expect(connection.api).toBe('https://abc123.execute-api.eu-west-1.amazonaws.com');
  });

  it('names the stack and its outputs when there is no ApiUrl', async () => {
    cfn
      .on(DescribeStacksCommand)
      .resolves(aStack('Seesaw', 'CREATE_COMPLETE', [{ OutputKey: 'TableName', OutputValue: 't' }]));
    await expect(
      resolveConnection({ stack: 'Seesaw' }, { env: noEnv({ AWS_REGION: 'eu-west-1' }), cwd: scratchDir() }),
    ).rejects.toThrow('stack Seesaw has no ApiUrl output (outputs: TableName); is it a Seesaw stack?');
  });

  it("passes on CloudFormation's refusal with the stack and region", async () => {
    cfn
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id Nope does not exist'), { name: 'ValidationError' }));
    await expect(
      resolveConnection({ stack: 'Nope' }, { env: noEnv({ AWS_REGION: 'eu-west-1' }), cwd: scratchDir() }),
    ).rejects.toThrow(
      'cannot read the outputs of stack Nope (eu-west-1): ValidationError: Stack with id Nope does not exist',
    );
  });

  it('--api wins over --stack without asking CloudFormation', async () => {
    const connection = await resolveConnection(
      { api: 'https://x.execute-api.ap-south-1.amazonaws.com', stack: 'Seesaw' },
      { env: noEnv(), cwd: scratchDir() },
    );
    expect(connection).toMatchObject({ auth: 'iam', region: 'ap-south-1' });
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });
});

describe('auth mode', () => {
  it('is token for a loopback URL and iam for any other, unless --auth or SEESAW_AUTH says', async () => {
    const cwd = scratchDir();
    const env = noEnv({ SEESAW_TOKEN: 't', AWS_REGION: 'eu-west-1' });
    for (const [api, auth] of [
      ['http://127.0.0.1:8787', 'token'],
      ['http://localhost:1', 'token'],
      ['http://[::1]:8787', 'token'],
      ['https://api.example.com', 'iam'],
      ['http://10.0.0.5:8787', 'iam'],
    ] as const)
      expect((await resolveConnection({ api }, { env, cwd })).auth, api).toBe(auth);
    expect(
      (await resolveConnection({ api: 'https://api.example.com', auth: 'token' }, { env, cwd })).auth,
    ).toBe('token');
    expect(
      (await resolveConnection({ api: 'http://127.0.0.1:1' }, { env: { ...env, SEESAW_AUTH: 'iam' }, cwd }))
        .auth,
    ).toBe('iam');
  });

  it('refuses an unknown mode and IAM without a region', async () => {
    const cwd = scratchDir();
    await expect(
      resolveConnection({ api: 'http://127.0.0.1:1', auth: 'basic' }, { env: noEnv(), cwd }),
    ).rejects.toThrow('--auth / SEESAW_AUTH must be iam or token, got "basic"');
    await expect(
      resolveConnection({ api: 'https://api.example.com' }, { env: noEnv(), cwd }),
    ).rejects.toThrow(
      'IAM auth needs a region: https://api.example.com names none, and neither --region, AWS_REGION nor AWS_DEFAULT_REGION is set',
    );
  });
});

describe('finding the cluster', () => {
  it('walks up from the working directory to the nearest .seesaw', async () => {
    const root = scratchDir();
    aClusterDir(root, 'http://127.0.0.1:8123', 'walked');
    const deep = join(root, 'a', 'b', 'c');
    mkdirSync(deep, { recursive: true });
    expect(await resolveConnection({}, { env: noEnv(), cwd: deep })).toEqual({
      api: 'http://127.0.0.1:8123',
      via: `${join(root, '.seesaw', 'endpoints.json')} (found in ${root})`,
      auth: 'token',
      token: 'walked',
    });
  });

  it('prefers --data, then SEESAW_DATA, over a .seesaw found by walking up', () => {
    const root = scratchDir();
    aClusterDir(root);
    const other = scratchDir();
    expect(findClusterDir({ data: other }, noEnv({ SEESAW_DATA: '/x' }), root).found?.via).toBe('--data');
    expect(findClusterDir({}, noEnv({ SEESAW_DATA: other }), root).found).toEqual({
      dir: other,
      via: 'SEESAW_DATA',
    });
    expect(findClusterDir({}, noEnv(), root).found?.dir).toBe(join(root, '.seesaw'));
  });

  it('falls back to the cluster that `seesaw up` recorded in the user config', async () => {
    const home = scratchDir();
    const env = noEnv({ XDG_CONFIG_HOME: home });
    const dir = aClusterDir(scratchDir(), 'http://127.0.0.1:8555', 'remembered');
    const file = writeUserConfig({ data: dir, api: 'http://127.0.0.1:8555' }, env);
    expect(file).toBe(join(home, 'seesaw', 'config.json'));
    expect(userConfigPath({ HOME: '/home/op' } as NodeJS.ProcessEnv)).toMatch(
      /\.config\/seesaw\/config\.json$/,
    );
    const connection = await resolveConnection({}, { env, cwd: scratchDir() });
    expect(connection).toMatchObject({ api: 'http://127.0.0.1:8555', token: 'remembered' });
    expect(connection.via).toContain(file);
  });

  it('says everything it looked for when there is no cluster', async () => {
    const home = scratchDir();
    const cwd = scratchDir();
    const error = await resolveConnection({}, { env: noEnv({ XDG_CONFIG_HOME: home }), cwd }).catch((e) => e);
    expect(error.message).toBe(
      `no cluster found (no --api or SEESAW_API; no --stack or SEESAW_STACK; no .seesaw in ${cwd} or any parent; ` +
        `SEESAW_DATA is not set; no ${join(home, 'seesaw', 'config.json')}): ` +
        'start one with `npm start`, or pass --data DIR, --api URL or --stack NAME',
    );
  });

  it('says when --data or SEESAW_DATA names no directory', async () => {
    await expect(
      resolveConnection({ data: '/nonexistent/x' }, { env: noEnv(), cwd: scratchDir() }),
    ).rejects.toThrow('--data names /nonexistent/x, which is not a directory');
    await expect(
      resolveConnection({}, { env: noEnv({ SEESAW_DATA: '/nonexistent/y' }), cwd: scratchDir() }),
    ).rejects.toThrow('SEESAW_DATA names /nonexistent/y, which is not a directory');
  });

  it('says when the recorded cluster directory is gone', async () => {
    const env = noEnv();
    writeUserConfig({ data: '/nonexistent/.seesaw' }, env);
    await expect(resolveConnection({}, { env, cwd: scratchDir() })).rejects.toThrow(
      `${userConfigPath(env)} names /nonexistent/.seesaw, which no longer exists`,
    );
  });
});
