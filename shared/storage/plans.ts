// Plans: what a dry run decided, kept so that exactly those moves can be applied later. A plan is
// applied at most once: the apply claims it with a conditional write on its status and expiry.
import type { Plan } from '../domain/plans.ts';
import type { Clients } from './clients.ts';
import { ConditionFailed, NotFound } from './errors.ts';
import { kindIndexKey, planKey } from './keys.ts';
import { TABLE } from './schema.ts';
import { getItem, kindPage, type Page, putItem, updateItem } from './table.ts';

/** How long a plan item outlives its expiry, so a late apply is told "expired" rather than "not found". */
export const PLAN_RETENTION_MS = 24 * 60 * 60 * 1000;

const timeOrder = (at: number, id: string) =>
  `${String(Math.max(0, Math.floor(at))).padStart(15, '0')}#${id}`;

interface PlanItem {
  plan: Plan;
}

/** Stores a new plan; a second put under the same id fails (ConditionFailed). */
export async function putPlan(clients: Clients, plan: Plan): Promise<void> {
  await putItem(clients, 'putPlan', {
    Item: {
      ...planKey(plan.id),
      ...kindIndexKey('PLAN', timeOrder(plan.createdAt, plan.id)),
      [TABLE.ttlAttribute]: Math.floor((plan.expiresAt + PLAN_RETENTION_MS) / 1000),
      plan,
    },
    ConditionExpression: 'attribute_not_exists(pk)',
  });
}

export async function getPlan(clients: Clients, id: string): Promise<Plan> {
  const item = await getItem<PlanItem>(clients, planKey(id));
  if (!item) throw new NotFound('plan', id);
  return item.plan;
}

/** One page of plans, newest first. */
export async function listPlans(
  clients: Clients,
  options: { limit?: number; cursor?: string } = {},
): Promise<Page<Plan>> {
  const page = await kindPage<PlanItem>(clients, 'PLAN', {
    limit: options.limit ?? 20,
    cursor: options.cursor,
  });
  return { ...page, items: page.items.map((item) => item.plan) };
}

/**
 * Claims an open, unexpired plan for applying: status open → applied. Fails (ConditionFailed) when
 * the plan was applied already or has expired, so two applies never both order its moves.
 */
export async function markPlanApplied(clients: Clients, id: string, now: number): Promise<Plan> {
  const item = await updateItem<PlanItem>(clients, 'markPlanApplied', {
    Key: planKey(id),
    UpdateExpression: 'SET #p.#s = :applied, #p.appliedAt = :now',
    ConditionExpression: 'attribute_exists(pk) AND #p.#s = :open AND #p.expiresAt > :now',
    ExpressionAttributeNames: { '#p': 'plan', '#s': 'status' },
    ExpressionAttributeValues: { ':applied': 'applied', ':open': 'open', ':now': now },
  });
  return item.plan;
}

/** Records what became of each move of an applied plan. */
export async function recordPlanOutcome(
  clients: Clients,
  id: string,
  outcome: NonNullable<Plan['outcome']>,
): Promise<Plan> {
  try {
    const item = await updateItem<PlanItem>(clients, 'recordPlanOutcome', {
      Key: planKey(id),
      UpdateExpression: 'SET #p.outcome = :o',
      ConditionExpression: '#p.#s = :applied',
      ExpressionAttributeNames: { '#p': 'plan', '#s': 'status' },
      ExpressionAttributeValues: { ':o': outcome, ':applied': 'applied' },
    });
    return item.plan;
  } catch (error) {
    if (error instanceof ConditionFailed) throw new ConditionFailed('recordPlanOutcome', 'plan not applied');
    throw error;
  }
}
