import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePairs, resolveAgentConfig } from '../../node-agent/main.ts';

const env = { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2' };

describe('the agent process configuration', () => {
  it('parses weights and labels from key=value lists', () => {
    expect(parsePairs('cpu=1,io=0.2')).toEqual({ cpu: '1', io: '0.2' });
    expect(parsePairs(['zone=a', 'disk=ssd,rack=4'])).toEqual({ zone: 'a', disk: 'ssd', rack: '4' });
    expect(() => parsePairs('cpu')).toThrow(/key=value/);
  });

  it('builds one validated object from flags and the standard endpoint variables', () => {
    const config = resolveAgentConfig(
      { node: 'n1', weights: 'cpu=2', labels: ['zone=a'], leaseMs: '8000' },
      env,
    );
    expect(config).toMatchObject({
      node: 'n1',
      weights: { cpu: 2, io: 0.2, mem: 0.1 },
      labels: { zone: 'a' },
      leaseMs: 8000,
      reportMs: 2000,
      storage: { dynamoEndpoint: 'http://127.0.0.1:1', s3Endpoint: 'http://127.0.0.1:2' },
    });
  });

  it('reads endpoints from the endpoints.json that `seesaw up` writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-agent-cfg-'));
    writeFileSync(
      join(dir, 'endpoints.json'),
      JSON.stringify({
        dynamodb: 'http://127.0.0.1:8000',
        s3: 'http://127.0.0.1:4569',
        table: 'seesaw',
        bucket: 'seesaw-images',
        region: 'us-east-1',
      }),
    );
    expect(resolveAgentConfig({ node: 'n1', data: dir }, {}).storage).toMatchObject({
      dynamoEndpoint: 'http://127.0.0.1:8000',
      tableName: 'seesaw',
    });
  });

  it('rejects bad input with a message that names the field', () => {
    expect(() => resolveAgentConfig({ node: 'n1', capacity: 'lots' }, env)).toThrow(/capacity/);
    expect(() => resolveAgentConfig({ node: 'bad id!' }, env)).toThrow(/node/);
    expect(() => resolveAgentConfig({ node: 'n1', weights: 'cpu=-1' }, env)).toThrow(/weights/);
    expect(() => resolveAgentConfig({ node: 'n1', leaseMs: '1000', reportMs: '900' }, env)).toThrow(
      /reportMs/,
    );
  });
});
