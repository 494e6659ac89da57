// Lambda entry of the scheduled balancer: EventBridge Scheduler invokes it once per shard and round
// with {"shard": i, "shards": S}. Clients and Powertools live at module scope (one per container);
// the logic is runBalancer. Each run's metrics leave as one CloudWatch EMF line (Powertools Metrics).
import { randomInt } from 'node:crypto';
import { createRng } from '../../shared/domain/rng.ts';
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { InvalidInput } from '../../shared/storage/errors.ts';
import { recordRunMetrics } from '../metrics.ts';
import { instrumented, observability, pinoStyle, SERVICES, traceClients } from '../observability.ts';
import { BALANCER_DEFAULTS, runBalancer } from './run.ts';

const roundMs = Number(process.env.SEESAW_BALANCER_ROUND_MS ?? BALANCER_DEFAULTS.roundMs);
const cluster = process.env.SEESAW_CLUSTER;
const tools = observability(SERVICES.balancer, cluster ? { defaultDimensions: { Cluster: cluster } } : {});
const clients = traceClients(tools.tracer, createClients(storageConfigFromEnv()));
const log = pinoStyle(tools.logger);

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

export const handler = instrumented(tools, async (event: BalancerEvent = {}) => {
  const { shard, shards } = checkEvent(event);
  const record = await runBalancer(
    { clients, clock: Date.now, rng: createRng(randomInt(2 ** 32)), log },
    { ...(shard !== undefined ? { shard } : {}), ...(shards !== undefined ? { shards } : {}), roundMs },
  );
  recordRunMetrics(tools.metrics, record);
  tools.tracer.putAnnotation('exchanges', record.exchanges);
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
});
