// The agent process's peer-channel option: --peer-listen / SEESAW_PEER_LISTEN, off unless given.
import { describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../../node-agent/main.ts';

const env = { AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2' };

describe("the agent process's peer channel option", () => {
  it('is off unless given', () => {
    expect(resolveAgentConfig({ node: 'n1' }, env).peerListen).toBeUndefined();
    expect(resolveAgentConfig({ node: 'n1', peerListen: 'off' }, env).peerListen).toBeUndefined();
  });

  it('takes host[:port] from the flag or the environment, the flag winning', () => {
    expect(resolveAgentConfig({ node: 'n1', peerListen: '127.0.0.1:0' }, env).peerListen).toEqual({
      host: '127.0.0.1',
      port: 0,
    });
    expect(
      resolveAgentConfig({ node: 'n1' }, { ...env, SEESAW_PEER_LISTEN: '10.0.0.5:7400' }).peerListen,
    ).toEqual({
      host: '10.0.0.5',
      port: 7400,
    });
    expect(
      resolveAgentConfig({ node: 'n1', peerListen: 'off' }, { ...env, SEESAW_PEER_LISTEN: '10.0.0.5:7400' })
        .peerListen,
    ).toBeUndefined();
  });

  it('refuses a malformed address with a readable error', () => {
    expect(() => resolveAgentConfig({ node: 'n1', peerListen: 'host:99999' }, env)).toThrow(/host\[:port\]/);
    expect(() => resolveAgentConfig({ node: 'n1', peerListen: ':80' }, env)).toThrow(/host\[:port\]/);
  });
});
