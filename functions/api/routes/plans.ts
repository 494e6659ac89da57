// Plans: the moves a dry run decided, listed, shown and applied exactly as reviewed.
import { z } from '@hono/zod-openapi';
import { isPlanExpired, type Plan } from '../../../shared/domain/plans.ts';
import { getPlan, listPlans } from '../../../shared/storage/plans.ts';
import type { ApiDeps } from '../deps.ts';
import { applyPlan } from '../plans.ts';
import { PROBLEM_CONTENT_TYPE, ProblemSchema, problemResponses } from '../problem.ts';
import { newRouter, routesOf } from '../router.ts';
import { jsonResponse, pageAnswer, pageOptions, pageQuery, pageSchema } from '../schemas.ts';

const PlannedMoveSchema = z.object({
  vm: z.string(),
  from: z.string(),
  to: z.string(),
  loadOnSource: z.number(),
  loadOnTarget: z.number(),
  fence: z.number().int().openapi({ description: 'The fence the VM ran under when the plan was made.' }),
});

export const PlanSchema = z
  .object({
    id: z.string(),
    run: z.string().openapi({ description: 'The dry run that decided it.' }),
    createdAt: z.number(),
    expiresAt: z.number().openapi({ description: 'Epoch ms; from then on an apply answers 410.' }),
    status: z.enum(['open', 'applied', 'expired']).openapi({
      description: '`expired`: an open plan past `expiresAt`; applying it answers 410.',
    }),
    moves: z.array(PlannedMoveSchema),
    loads: z.record(z.string(), z.number()).openapi({
      description: 'Load of each node the moves touch, under its own weights, as the dry run saw it.',
    }),
    drift: z.object({ absolute: z.number(), relative: z.number() }).openapi({
      description:
        'An apply is refused when a node drifted by more than max(absolute, relative × seen load).',
    }),
    appliedAt: z.number().optional(),
    outcome: z
      .array(
        z.object({
          vm: z.string(),
          migration: z.string(),
          outcome: z.string().openapi({ description: 'written, lost, unclaimed or failed' }),
          detail: z.string().optional(),
        }),
      )
      .optional(),
  })
  .openapi('Plan', { description: 'The moves a dry run decided, kept so exactly they can be applied.' });

const PlanChangeSchema = z.object({
  kind: z.enum(['fence', 'owner', 'state', 'load', 'node']),
  vm: z.string().optional(),
  node: z.string().optional(),
  seen: z.union([z.number(), z.string()]).optional(),
  now: z.union([z.number(), z.string()]).nullable().optional(),
  bound: z.number().optional(),
  detail: z.string(),
});

const StalePlanSchema = ProblemSchema.extend({ changes: z.array(PlanChangeSchema).optional() }).openapi(
  'PlanProblem',
  { description: 'A refused apply; for a stale plan, `changes` names each VM and node that changed.' },
);

const PlanIdSchema = z.object({
  id: z
    .string()
    .min(1)
    .max(128)
    .openapi({ param: { name: 'id', in: 'path' }, example: 'plan-3f9a1c2e01' }),
});

const route = routesOf('Balancing');

const refused = (description: string) => ({
  description,
  content: { [PROBLEM_CONTENT_TYPE]: { schema: StalePlanSchema } },
});

/** A plan as callers see it: an open plan past its expiry says so. */
const asShown = (plan: Plan, now: number): Omit<Plan, 'status'> & { status: Plan['status'] | 'expired' } =>
  plan.status === 'open' && isPlanExpired(plan, now) ? { ...plan, status: 'expired' } : plan;

export function planRoutes(deps: ApiDeps) {
  const { clients } = deps;
  return newRouter()
    .openapi(
      route({
        method: 'get',
        path: '/v1/plans',
        operationId: 'listPlans',
        summary: 'Plans of dry runs, newest first (open, applied and expired until they are removed)',
        request: {
          query: z.object(pageQuery(100, 20)).strict(),
        },
        responses: {
          200: jsonResponse(pageSchema(PlanSchema), 'One page of plans'),
          ...problemResponses(400, 401),
        },
      }),
      async (c) => {
        const page = await listPlans(clients, pageOptions(c.req.valid('query')));
        const now = deps.clock();
        return c.json(
          pageAnswer(page, (plan) => asShown(plan, now)),
          200,
        );
      },
    )
    .openapi(
      route({
        method: 'get',
        path: '/v1/plans/{id}',
        operationId: 'getPlan',
        summary: 'Show a plan',
        request: { params: PlanIdSchema },
        responses: { 200: jsonResponse(PlanSchema, 'The plan'), ...problemResponses(400, 401, 404) },
      }),
      async (c) => c.json(asShown(await getPlan(clients, c.req.valid('param').id), deps.clock()), 200),
    )
    .openapi(
      route({
        method: 'post',
        path: '/v1/plans/{id}/apply',
        operationId: 'applyPlan',
        summary: 'Order exactly the moves of a plan, through the balancer’s fenced exchange writes',
        description:
          'Refused with 409 when a VM’s fence, owner or state changed, a node left or is draining, or a node’s load drifted beyond the plan’s bound (`changes` says which), or when the plan was applied already; with 410 once it expired. A refused apply changes nothing.',
        request: { params: PlanIdSchema },
        responses: {
          200: jsonResponse(PlanSchema, 'The applied plan, with what became of each move'),
          ...problemResponses(400, 401, 404),
          409: refused('The cluster changed since the plan was made, or the plan was applied already'),
          410: refused('The plan expired'),
        },
      }),
      async (c) =>
        c.json(
          await applyPlan(
            {
              clients,
              clock: deps.clock,
              orderDeadlineMs: deps.migrationDeadlineMs,
              logError: deps.logError,
            },
            c.req.valid('param').id,
          ),
          200,
        ),
    );
}
