// A run's claims at the SDK boundary: one claim per node for all the run's exchanges, released only
// after the node's last exchange and only when none wrote, renewed before it lapses, a lost one kept lost.
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runClaims } from '../../functions/balancer/exchange.ts';
import { localClients } from '../../shared/local/stores.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';

const NOW = 1_700_000_000_000;
const TTL = 10_000;
// The SDK is mocked below: these endpoints are never reached.
const clients = localClients({ dynamoEndpoint: 'http://127.0.0.1:9', s3Endpoint: 'http://127.0.0.1:9' });
const RUN = { id: 'run-1', options: { claimTtlMs: TTL } };
// A giver in three exchanges of one run (it spilled), each partner in one.
const PAIRS = [
  { requester: 'hot', selected: 'a' },
  { requester: 'hot', selected: 'b' },
  { requester: 'c', selected: 'hot' },
];

const conditionFailed = () =>
  Object.assign(new Error('The conditional request failed'), { name: 'ConditionalCheckFailedException' });

describe("a run's claims, at the SDK boundary", () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  /** Each write as `claim node until` or `release node`, in the order sent. */
  const writes = () =>
    ddb.commandCalls(UpdateCommand).map(({ args: [{ input }] }) => {
      const node = String(input.Key?.pk).replace('NODE#', '');
      return input.UpdateExpression === 'REMOVE claim'
        ? `release ${node}`
        : `claim ${node} ${(input.ExpressionAttributeValues as { ':claim': { until: number } })[':claim'].until - NOW}`;
    });
  beforeEach(() => {
    ddb.reset();
    ddb.on(UpdateCommand).resolves({ Attributes: {} });
  });
  afterEach(() => ddb.reset());

  it('claims a node in several exchanges once, and releases it after its last exchange when none wrote', async () => {
    const claims = runClaims(clients, RUN, PAIRS);
    await Promise.all(PAIRS.flatMap((p) => [claims.hold(p.requester, NOW), claims.hold(p.selected, NOW)]));
    expect(writes().sort()).toEqual(['claim a 10000', 'claim b 10000', 'claim c 10000', 'claim hot 10000']);

    await claims.finish(PAIRS[0] as (typeof PAIRS)[0], false);
    await claims.finish(PAIRS[1] as (typeof PAIRS)[0], false);
    expect(writes().filter((w) => w.startsWith('release'))).toEqual(['release a', 'release b']);
    await claims.finish(PAIRS[2] as (typeof PAIRS)[0], false);
    expect(writes().filter((w) => w.startsWith('release'))).toEqual([
      'release a',
      'release b',
      'release c',
      'release hot',
    ]);
  });

  it('keeps a node claimed when any exchange on it wrote, whatever order the exchanges end in', async () => {
    for (const wrote of [0, 1, 2]) {
      ddb.resetHistory();
      const claims = runClaims(clients, RUN, PAIRS);
      for (const p of PAIRS) {
        await claims.hold(p.requester, NOW);
        await claims.hold(p.selected, NOW);
      }
      for (const [k, p] of [...PAIRS.entries()].reverse()) await claims.finish(p, k === wrote);
      const partners = ['a', 'b', 'c'].filter((_, k) => k !== wrote);
      expect(
        writes()
          .filter((w) => w.startsWith('release'))
          .sort(),
      ).toEqual(partners.map((n) => `release ${n}`));
    }
  });

  it('never releases a claim it did not get, and keeps a lost claim lost for the rest of the run', async () => {
    ddb.on(UpdateCommand, { Key: { pk: 'NODE#hot', sk: 'NODE' } }).rejects(conditionFailed());
    const claims = runClaims(clients, RUN, PAIRS);
    await expect(claims.hold('hot', NOW)).rejects.toBeInstanceOf(ConditionFailed);
    await expect(claims.hold('hot', NOW + 1)).rejects.toBeInstanceOf(ConditionFailed);
    await claims.hold('a', NOW);
    for (const p of PAIRS) await claims.finish(p, false);
    expect(writes()).toEqual(['claim hot 10000', 'claim a 10000', 'release a']);
  });

  it('tries again after a store error instead of keeping it', async () => {
    ddb
      .on(UpdateCommand, { Key: { pk: 'NODE#hot', sk: 'NODE' } })
      .rejectsOnce(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }))
      .resolves({ Attributes: {} });
    const claims = runClaims(clients, RUN, PAIRS);
    await expect(claims.hold('hot', NOW)).rejects.toThrow('Rate exceeded');
    await claims.hold('hot', NOW + 5);
    expect(writes()).toEqual(['claim hot 10000', 'claim hot 10005']);
  });

  it('renews its own claim when less than half of it is left, so a long run never relies on a lapsed one', async () => {
    const claims = runClaims(clients, RUN, PAIRS);
    await claims.hold('hot', NOW);
    await claims.hold('hot', NOW + TTL / 2);
    await claims.hold('hot', NOW + TTL / 2 + 1);
    expect(writes()).toEqual(['claim hot 10000', `claim hot ${TTL / 2 + 1 + TTL}`]);
  });
});
