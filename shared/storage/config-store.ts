// The cluster's balancing configuration: one item, read by every balancer run, written through the API.
import { balancingConfigSchema, DEFAULT_BALANCING_CONFIG, resolveBalancingConfig } from '../domain/config.ts';
import type { BalancingConfig } from '../domain/types.ts';
import type { Clients } from './clients.ts';
import { Corrupt, InvalidInput } from './errors.ts';
import { configKey, kindIndexKey } from './keys.ts';
import { getItem, updateItem } from './table.ts';

const NAME = 'balancing';

interface ConfigItem {
  config: unknown;
  version: number;
  updatedAt: number;
}

function describeIssues(error: {
  issues: readonly { path: readonly PropertyKey[]; message: string }[];
}): string {
  return error.issues.map((i) => `${i.path.map(String).join('.') || '(config)'}: ${i.message}`).join('; ');
}

/** The stored config laid over the defaults (so fields added later get their default); defaults when absent. */
export async function getBalancingConfig(clients: Clients): Promise<BalancingConfig> {
  const item = await getItem<ConfigItem>(clients, configKey(NAME));
  if (!item) return { ...DEFAULT_BALANCING_CONFIG };
  const parsed = balancingConfigSchema.safeParse({ ...DEFAULT_BALANCING_CONFIG, ...(item.config as object) });
  if (!parsed.success)
    throw new Corrupt(`stored balancing config is invalid: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Replaces the config after validating it whole; InvalidInput says which fields are wrong. */
export async function putBalancingConfig(
  clients: Clients,
  config: unknown,
  now: number,
): Promise<BalancingConfig> {
  const parsed = balancingConfigSchema.safeParse(config);
  if (!parsed.success) throw new InvalidInput(`invalid balancing config: ${describeIssues(parsed.error)}`);
  await updateItem(clients, 'putBalancingConfig', {
    Key: configKey(NAME),
    UpdateExpression:
      'SET config = :c, updatedAt = :now, version = if_not_exists(version, :zero) + :one, #kind = :kind, gsi2sk = :name',
    ExpressionAttributeNames: { '#kind': 'kind' },
    ExpressionAttributeValues: {
      ':c': parsed.data,
      ':now': now,
      ':zero': 0,
      ':one': 1,
      ':kind': kindIndexKey('CONFIG', NAME).kind,
      ':name': NAME,
    },
  });
  return parsed.data;
}

/** Lays a partial config over the stored one, validates the result and stores it. */
export async function patchBalancingConfig(
  clients: Clients,
  partial: unknown,
  now: number,
): Promise<BalancingConfig> {
  const current = await getBalancingConfig(clients);
  let next: BalancingConfig;
  try {
    next = resolveBalancingConfig(partial, current);
  } catch (error) {
    const issues = (error as { issues?: { path: PropertyKey[]; message: string }[] }).issues;
    throw new InvalidInput(
      `invalid balancing config: ${issues ? describeIssues({ issues }) : String(error)}`,
    );
  }
  return putBalancingConfig(clients, next, now);
}
