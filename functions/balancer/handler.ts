// Lambda entry of the scheduled balancer: EventBridge Scheduler invokes it once per shard and round
// with {"shard": i, "shards": S}. Clients and the logger live at module scope (one per container);
// the logic is runBalancer. One CloudWatch EMF line per run carries the metrics.
import { randomInt } from 'node:crypto';
import pino from 'pino';
import { createRng } from '../../shared/domain/rng.ts';
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { InvalidInput } from '../../shared/storage/errors.ts';
import type { RunRecord } from '../../shared/storage/runs.ts';
import { BALANCER_DEFAULTS, runBalancer } from './run.ts';

const clients = createClients(storageConfigFromEnv());
const log = pino({ name: 'seesaw-balancer' });
const roundMs = Number(process.env.SEESAW_BALANCER_ROUND_MS ?? BALANCER_DEFAULTS.roundMs);
const cluster = process.env.SEESAW_CLUSTER;

export interface BalancerEvent {
  shard?: number;
  shards?: number;
}

function checkEvent(event: unknown): BalancerEvent {
  const { shard, shards } = (event ?? {}) as Record<string, unknown>;
  for (const [name, value] of [
    ['shard', shard],
    ['shards', shards],
  ] as const) {
    if (value !== undefined && !(typeof value === 'number' && Number.isInteger(value) && value >= 0)) {
      throw new InvalidInput(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
    }
  }
  return {
    ...(shard !== undefined ? { shard: shard as number } : {}),
    ...(shards !== undefined ? { shards: shards as number } : {}),
  };
}

/** The run's CloudWatch Embedded Metric Format line: namespace Seesaw, Exchanges and ImbalanceCV. */
export function metricLine(record: RunRecord, clusterName?: string): Record<string, unknown> {
  const dimensions = clusterName ? [['Cluster']] : [[]];
  return {
    _aws: {
      Timestamp: record.at,
      CloudWatchMetrics: [
        {
          Namespace: 'Seesaw',
          Dimensions: dimensions,
          Metrics: [
            { Name: 'Exchanges', Unit: 'Count' },
            { Name: 'ImbalanceCV', Unit: 'None' },
            { Name: 'OrdersLost', Unit: 'Count' },
          ],
        },
      ],
    },
    ...(clusterName ? { Cluster: clusterName } : {}),
    Exchanges: record.exchanges,
    ImbalanceCV: record.before.cv,
    OrdersLost: record.ordersLost,
    run: record.id,
    shard: record.shard,
    round: record.round,
  };
}

export async function handler(event: BalancerEvent = {}) {
  const { shard, shards } = checkEvent(event);
  const record = await runBalancer(
    { clients, clock: Date.now, rng: createRng(randomInt(2 ** 32)), log },
    { ...(shard !== undefined ? { shard } : {}), ...(shards !== undefined ? { shards } : {}), roundMs },
  );
  process.stdout.write(`${JSON.stringify(metricLine(record, cluster))}\n`);
  return {
    run: record.id,
    shard: record.shard,
    round: record.round,
    exchanges: record.exchanges,
    ordersWritten: record.ordersWritten,
    ordersLost: record.ordersLost,
    cvBefore: record.before.cv,
    cvAfter: record.after.cv,
  };
}
