// The balancing configuration: its schema (validates the API's PUT and scenario files) and defaults.
import { z } from 'zod';
import type { BalancingConfig } from './types.ts';

export const balancingConfigSchema = z
  .object({
    pairing: z.enum(['random', 'round-robin', 'sender', 'receiver', 'symmetric', 'spread']),
    withRandom: z.boolean(),
    selection: z.enum(['best-balance', 'half-diff', 'target', 'largest']),
    thresholdFactor: z.number().min(1).max(10),
    margin: z.number().min(0),
    highThreshold: z.number().min(0).max(10),
    lowThreshold: z.number().min(0).max(10),
    direction: z.enum(['both', 'push-only']),
    multiVm: z.boolean(),
    maxMovesPerExchange: z.number().int().min(1).max(100),
    cooldownMs: z.number().int().min(0),
    maxMigrationsPerNode: z.number().int().min(1).max(1000),
    maxMigrationsPerCluster: z.number().int().min(1).max(1_000_000),
    reportStaleMs: z.number().int().min(1),
    shards: z.number().int().min(1).max(1024),
    aim: z.enum(['pair', 'mean']).optional(),
    trigger: z.enum(['difference', 'headroom', 'auto']).optional(),
  })
  .strict() satisfies z.ZodType<BalancingConfig>;

export const DEFAULT_BALANCING_CONFIG: BalancingConfig = {
  pairing: 'spread',
  withRandom: true,
  selection: 'best-balance',
  thresholdFactor: 1.05,
  margin: 0.05,
  highThreshold: 0.8,
  lowThreshold: 0.3,
  direction: 'both',
  multiVm: true,
  maxMovesPerExchange: 8,
  cooldownMs: 60_000,
  maxMigrationsPerNode: 8,
  maxMigrationsPerCluster: 1000,
  reportStaleMs: 30_000,
  shards: 1,
  aim: 'mean',
  trigger: 'auto',
};

/** A partial config (from a file or a PATCH-like PUT) laid over the defaults and validated. */
export function resolveBalancingConfig(partial: unknown, base: BalancingConfig = DEFAULT_BALANCING_CONFIG) {
  const overlay = balancingConfigSchema.partial().parse(partial ?? {});
  return balancingConfigSchema.parse({ ...base, ...overlay });
}
