// Balancing: the config item, running a round now, and the history of runs and migrations.
import { type RouteHandler, z } from '@hono/zod-openapi';
import { balancingConfigSchema } from '../../../shared/domain/config.ts';
import { getBalancingConfig, patchBalancingConfig } from '../../../shared/storage/config-store.ts';
import { listMigrations } from '../../../shared/storage/migrations.ts';
import { listRuns } from '../../../shared/storage/runs.ts';
import type { ApiDeps } from '../deps.ts';
import { keepPlan } from '../plans.ts';
import { ApiProblem, problemResponses } from '../problem.ts';
import { newRouter, routesOf } from '../router.ts';
import { jsonBody, jsonResponse, pageAnswer, pageOptions, pageQuery, pageSchema } from '../schemas.ts';
import { PlanSchema } from './plans.ts';

// The domain's schema is built before @hono/zod-openapi extends zod, so it is used as it is (inlined).
const ConfigSchema = balancingConfigSchema;
/** Any subset of the config; merged over the stored one. */
const ConfigPatchSchema = balancingConfigSchema.partial().strict();

const ImbalanceSchema = z.object({
  cv: z.number(),
  maxOverMean: z.number(),
  maxLoad: z.number(),
  mean: z.number(),
});

const MoveSchema = z.object({
  vm: z.string(),
  from: z.string(),
  to: z.string(),
  loadOnSource: z.number().openapi({ description: "The VM's load under the source's weights." }),
  loadOnTarget: z.number().openapi({ description: "The VM's load under the target's weights." }),
});

const PairSchema = z.object({
  requester: z.string(),
  selected: z.string(),
  loads: z.object({ requester: z.number(), selected: z.number() }),
  moves: z.array(MoveSchema),
  reason: z.object({
    code: z.enum([
      'moved',
      'balanced',
      'below-threshold',
      'no-candidate',
      'no-gain',
      'constraint',
      'draining',
      'push-only',
      'limit',
    ]),
    detail: z.string(),
  }),
  predicted: z.object({ requester: z.number(), selected: z.number() }),
});

const RunOrderSchema = z.object({
  vm: z.string(),
  from: z.string(),
  to: z.string(),
  migration: z.string(),
  outcome: z.enum(['written', 'lost', 'unclaimed', 'failed', 'dry-run']),
  detail: z.string().optional(),
  fence: z.number().int().optional(),
});

export const RunSchema = z
  .looseObject({
    id: z.string(),
    at: z.number(),
    dryRun: z.boolean(),
    round: z.number(),
    shard: z.number(),
    shards: z.number(),
    pairs: z
      .array(PairSchema)
      .openapi({ description: 'Every pair the round formed (trimmed: see omitted).' }),
    exchanges: z.number(),
    orders: z.array(RunOrderSchema),
    ordersWritten: z.number(),
    ordersLost: z.number(),
    skipped: z.array(z.object({ node: z.string(), reason: z.string() })),
    before: ImbalanceSchema,
    after: ImbalanceSchema,
    omitted: z.object({ pairs: z.number(), orders: z.number(), skipped: z.number() }).optional(),
  })
  .openapi('Run', {
    description:
      'A balancing run: what it saw, the pairs it formed, the orders it wrote (and more fields: config, learning, usage).',
  });

const MigrationSchema = z
  .looseObject({
    id: z.string(),
    vm: z.string(),
    from: z.string(),
    to: z.string(),
    origin: z.string(),
    orderedAt: z.number(),
    endedAt: z.number(),
    outcome: z.enum(['completed', 'aborted', 'settled']),
    bytes: z.object({ precopy: z.number(), final: z.number() }).optional(),
    downtimeMs: z.number().optional(),
    totalMs: z.number(),
  })
  .openapi('Migration', { description: 'A finished or abandoned migration, with bytes moved and downtime.' });

const route = routesOf('Balancing');

const balanceRoute = route({
  method: 'post',
  path: '/v1/balance',
  operationId: 'balance',
  summary: 'Run one balancing round now (or only decide it, with dryRun) and return its record',
  description:
    'A dry run writes no orders; it stores a plan (`plan` in the answer) that `POST /v1/plans/{id}/apply` carries out exactly, until it expires.',
  request: { body: jsonBody(z.object({ dryRun: z.boolean().optional() }).strict(), false) },
  responses: {
    200: jsonResponse(
      RunSchema.extend({ plan: PlanSchema.optional() }),
      'The run record (stored unless dryRun); a dry run’s also carries its plan',
    ),
    ...problemResponses(400, 401, 415),
    503: { description: 'This API process cannot run the balancer' },
  },
});

export function balanceRoutes(deps: ApiDeps) {
  const { clients } = deps;
  return newRouter()
    .openapi(
      route({
        method: 'get',
        path: '/v1/config/balancing',
        operationId: 'getBalancingConfig',
        summary: 'The balancing configuration (defaults until first changed)',
        responses: { 200: jsonResponse(ConfigSchema, 'The config in force'), ...problemResponses(401) },
      }),
      async (c) => c.json(await getBalancingConfig(clients), 200),
    )
    .openapi(
      route({
        method: 'put',
        path: '/v1/config/balancing',
        operationId: 'putBalancingConfig',
        summary: 'Change the balancing configuration: the fields given are merged over the stored config',
        request: { body: jsonBody(ConfigPatchSchema) },
        responses: {
          200: jsonResponse(ConfigSchema, 'The config now in force'),
          ...problemResponses(400, 401, 415),
        },
      }),
      async (c) => c.json(await patchBalancingConfig(clients, c.req.valid('json'), deps.clock()), 200),
    )
    .openapi(balanceRoute, runRound(deps))
    .openapi(
      route({
        method: 'get',
        path: '/v1/runs',
        operationId: 'listRuns',
        summary: 'Balancing runs, newest first',
        request: { query: z.object(pageQuery(100, 20)).strict() },
        responses: {
          200: jsonResponse(pageSchema(RunSchema), 'One page of runs'),
          ...problemResponses(400, 401),
        },
      }),
      async (c) => {
        return c.json(pageAnswer(await listRuns(clients, pageOptions(c.req.valid('query')))), 200);
      },
    )
    .openapi(
      route({
        method: 'get',
        path: '/v1/migrations',
        operationId: 'listMigrations',
        summary: 'Migration history with bytes and downtime, newest first (optionally one VM’s)',
        request: {
          query: z.object({ ...pageQuery(1000, 50), vm: z.string().min(1).max(128).optional() }).strict(),
        },
        responses: {
          200: jsonResponse(pageSchema(MigrationSchema), 'One page of migrations'),
          ...problemResponses(400, 401),
        },
      }),
      async (c) => {
        const q = c.req.valid('query');
        const migrations = await listMigrations(clients, {
          ...pageOptions(q),
          ...(q.vm ? { vm: q.vm } : {}),
        });
        return c.json(pageAnswer(migrations), 200);
      },
    );
}

/** POST /v1/balance: one round now; a dry run's answer also carries the plan it stored. */
function runRound(deps: ApiDeps): RouteHandler<typeof balanceRoute> {
  return async (c) => {
    if (!deps.runBalancer)
      throw new ApiProblem(
        503,
        'unavailable',
        'Balancer unavailable',
        'this API process has no balancer runner',
      );
    const { dryRun } = c.req.valid('json');
    const run = await deps.runBalancer({ dryRun: dryRun ?? false });
    if (!run.dryRun) return c.json(run, 200);
    const plan = await keepPlan(deps.clients, run, deps.newId('plan'), deps.clock(), deps.plans);
    return c.json({ ...run, plan }, 200);
  };
}
