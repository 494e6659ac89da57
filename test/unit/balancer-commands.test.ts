// A simple run with the SDK mocked at the client boundary: which commands it sends, with what conditions.
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBalancer } from '../../functions/balancer/run.ts';
import { recordRunMetrics } from '../../functions/metrics.ts';
import { observability, SERVICES } from '../../functions/observability.ts';
import { createRng } from '../../shared/domain/rng.ts';
import { createClients } from '../../shared/storage/clients.ts';
import type { ReportedVm } from '../../shared/storage/nodes.ts';
import { captureEmf } from '../support/emf.ts';
import { aNodeRecord, aReportedVm } from '../support/records.ts';

const NOW = 1_700_000_000_000;
const clients = createClients({
  tableName: 'seesaw-unit',
  bucketName: 'seesaw-unit',
  region: 'us-east-1',
  credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
});
const quiet = { info() {}, warn() {} };
const deps = { clients, clock: () => NOW, rng: createRng(1), log: quiet };

const entry = (cpu: number, fence: number): ReportedVm =>
  aReportedVm({ factors: { cpu, io: 0, mem: 0 }, load: cpu, fence });
const aNode = (id: string, vms: Record<string, ReportedVm>) => aNodeRecord(id, { now: NOW, vms });

describe('a balancer run, at the SDK boundary', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  beforeEach(() => {
    ddb.reset();
    ddb.on(GetCommand).resolves({});
    ddb.on(QueryCommand).callsFake((input) =>
      input.ExpressionAttributeValues?.[':k'] === 'NODE'
        ? {
            Items: [
              aNode('hot', { v1: entry(1.0, 3), v2: entry(0.5, 7), v3: entry(0.3, 2) }),
              aNode('cold', {}),
            ],
            Count: 2,
          }
        : { Items: [], Count: 0 },
    );
    ddb.on(UpdateCommand).resolves({ Attributes: {} });
    ddb.on(PutCommand).resolves({});
  });
  afterEach(() => ddb.reset());

  it('reads the config, the nodes and the learning window, then claims both nodes and writes one fenced order', async () => {
    const record = await runBalancer(deps, { round: 1 });

    expect(ddb.commandCalls(GetCommand).map((c) => c.args[0].input.Key)).toEqual([
      { pk: 'CONFIG#balancing', sk: 'CONFIG' },
    ]);
    const queried = ddb
      .commandCalls(QueryCommand)
      .map((c) => c.args[0].input.ExpressionAttributeValues?.[':k']);
    expect(queried).toEqual(['NODE', 'LEARN']);

    const updates = ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input);
    const claims = updates.filter((u) => u.UpdateExpression === 'SET claim = :claim');
    expect(claims.map((c) => c.Key)).toEqual([
      { pk: 'NODE#cold', sk: 'NODE' },
      { pk: 'NODE#hot', sk: 'NODE' },
    ]);
    for (const claim of claims) {
      expect(claim.ExpressionAttributeValues?.[':claim']).toEqual({ run: record.id, until: NOW + 10_000 });
      expect(claim.ConditionExpression).toContain('attribute_not_exists(claim)');
    }
    const orders = updates.filter((u) => u.UpdateExpression?.startsWith('SET migration'));
    expect(orders).toHaveLength(1);
    const order = orders[0];
    expect(order?.Key).toEqual({ pk: 'VM#v1', sk: 'VM' });
    expect(order?.ConditionExpression).toContain('fence = :f');
    expect(order?.ExpressionAttributeValues).toMatchObject({
      ':from': 'hot',
      ':f': 3,
      ':m': { from: 'hot', to: 'cold', phase: 'ORDERED', origin: record.id, deadline: NOW + 60_000 },
    });
    for (const update of updates) expect(update.ReturnConsumedCapacity).toBe('TOTAL');

    const puts = ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item);
    expect(puts.map((item) => item?.pk)).toEqual([`LEARN#${record.id}`, `RUN#${record.id}`]);
    expect(puts[1]).toMatchObject({ kind: 'RUN', ordersWritten: 1, exchanges: 1, dryRun: false });
    expect(record.usage).toMatchObject({ reads: 2, writes: 5 });
  });

  it('sends no write at all in a dry run', async () => {
    const record = await runBalancer(deps, { round: 1, dryRun: true });
    expect(record.orders).toMatchObject([{ vm: 'v1', from: 'hot', to: 'cold', outcome: 'dry-run' }]);
    expect(ddb.commandCalls(UpdateCommand)).toHaveLength(0);
    expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
  });

  it('reports a lost order and releases the claims when the VM changed under the run', async () => {
    ddb.on(UpdateCommand, { UpdateExpression: 'SET migration = :m, updatedAt = :now' }).rejects(
      Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
      }),
    );
    const record = await runBalancer(deps, { round: 1 });
    expect(record.orders).toMatchObject([{ vm: 'v1', outcome: 'lost' }]);
    expect(record.ordersLost).toBe(1);
    expect(record.exchanges).toBe(0);
    const released = ddb
      .commandCalls(UpdateCommand)
      .map((c) => c.args[0].input)
      .filter((u) => u.UpdateExpression === 'REMOVE claim');
    expect(released.map((u) => u.Key?.pk)).toEqual(['NODE#cold', 'NODE#hot']);
  });

  it('records a store error on an order as failed and still writes the run record', async () => {
    ddb
      .on(UpdateCommand, { UpdateExpression: 'SET migration = :m, updatedAt = :now' })
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    const record = await runBalancer(deps, { round: 1 });
    expect(record.orders).toMatchObject([{ vm: 'v1', outcome: 'failed', detail: 'Rate exceeded' }]);
    expect(ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item?.pk)).toContain(`RUN#${record.id}`);
  });

  it('rejects a shard outside the shard count', async () => {
    await expect(runBalancer(deps, { shard: 2, shards: 2 })).rejects.toThrow(
      /shard must be an integer in \[0, 2\)/,
    );
  });

  it('turns a run record into one Powertools EMF line in the Seesaw namespace, under service and Cluster', async () => {
    const record = await runBalancer(deps, { round: 1, dryRun: true });
    const { metrics } = observability(SERVICES.balancer, { defaultDimensions: { Cluster: 'prod' } });
    recordRunMetrics(metrics, record);
    const lines = captureEmf(() => metrics.publishStoredMetrics());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      _aws: {
        Timestamp: NOW,
        CloudWatchMetrics: [{ Namespace: 'Seesaw', Dimensions: [['service', 'Cluster']] }],
      },
      service: 'seesaw-balancer',
      Cluster: 'prod',
      Exchanges: 1,
      ImbalanceCV: record.before.cv,
      OrdersLost: 0,
      run: record.id,
    });
    expect(lines[0]?._aws.CloudWatchMetrics[0]?.Metrics.map((m) => m.Name)).toEqual(
      expect.arrayContaining(['Exchanges', 'ImbalanceCV', 'OrdersLost']),
    );
    // Published metrics are cleared: the next invocation starts empty.
    expect(captureEmf(() => metrics.publishStoredMetrics())).toEqual([]);
  });
});
