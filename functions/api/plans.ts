// Plans in the API: a dry run's moves kept for review, and applying exactly those moves later
// through the balancer's own fenced exchange writes, unless the cluster changed since.
import {
  type DriftBound,
  isPlanExpired,
  type Plan,
  type PlanChange,
  type PlannedMove,
  planChanges,
  planExchanges,
} from '../../shared/domain/plans.ts';
import { ConditionFailed } from '../../shared/errors.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { getBalancingConfig } from '../../shared/storage/config-store.ts';
import { listNodes } from '../../shared/storage/nodes.ts';
import { getPlan, markPlanApplied, putPlan, recordPlanOutcome } from '../../shared/storage/plans.ts';
import type { RunOrder, RunRecord } from '../../shared/storage/runs.ts';
import { findVm } from '../../shared/storage/vms.ts';
import { exclusionOf, roundView } from '../balancer/input.ts';
import { carryOut, runClaims } from '../balancer/run.ts';
import { ApiProblem, conflict } from './problem.ts';

export interface PlanSettings {
  /** How long a plan may be applied after its dry run. */
  ttlMs: number;
  /** How far node loads may drift before an apply is refused. */
  drift: DriftBound;
}

/** The plan of a dry run: its moves with the fences the run read, and the loads of the nodes they touch. */
export function planOf(run: RunRecord, id: string, now: number, settings: PlanSettings): Plan {
  const fences = new Map(run.orders.map((o) => [o.vm, o.fence]));
  const moves: PlannedMove[] = run.pairs.flatMap((pair) =>
    pair.moves.map((m) => ({ ...m, fence: fences.get(m.vm) ?? -1 })),
  );
  const loads: Record<string, number> = {};
  for (const pair of run.pairs) {
    if (pair.moves.length === 0) continue;
    // A node in several exchanges (a giver that spilled) keeps the load the run read: its first one's.
    loads[pair.requester] ??= pair.loads.requester;
    loads[pair.selected] ??= pair.loads.selected;
  }
  return {
    id,
    run: run.id,
    createdAt: now,
    expiresAt: now + settings.ttlMs,
    status: 'open',
    moves,
    loads,
    drift: settings.drift,
  };
}

/** Stores the plan of a dry run and returns it. */
export async function keepPlan(
  clients: Clients,
  run: RunRecord,
  id: string,
  now: number,
  settings: PlanSettings,
): Promise<Plan> {
  const plan = planOf(run, id, now, settings);
  await putPlan(clients, plan);
  return plan;
}

const expired = (plan: Plan) =>
  new ApiProblem(
    410,
    'plan-expired',
    'Plan expired',
    `plan ${plan.id} expired at ${new Date(plan.expiresAt).toISOString()}; run a new dry run`,
  );
const alreadyApplied = (plan: Plan) =>
  conflict(
    `plan ${plan.id} was already applied${plan.appliedAt ? ` at ${new Date(plan.appliedAt).toISOString()}` : ''}; a plan is applied at most once`,
  );

/** A 409 that names what changed since the plan was made. */
export function staleProblem(plan: Plan, changes: PlanChange[]): ApiProblem {
  const shown = changes
    .slice(0, 3)
    .map((c) => c.detail)
    .join('; ');
  const more = changes.length > 3 ? ` (and ${changes.length - 3} more)` : '';
  return new ApiProblem(
    409,
    'plan-stale',
    'Plan no longer matches the cluster',
    `plan ${plan.id} was not applied: ${shown}${more}; run a new dry run`,
    { changes },
  );
}

/** What has changed since the plan was made: VM items for fences, node items for liveness and loads. */
async function changesSince(clients: Clients, plan: Plan, now: number): Promise<PlanChange[]> {
  const config = await getBalancingConfig(clients);
  const records = await listNodes(clients);
  const options = { now, round: 0, shard: 0, shards: 1, reportStaleMs: config.reportStaleMs, run: plan.id };
  const view = roundView(records, options);
  const byId = new Map(records.map((r) => [r.id, r]));
  const takers = new Set(plan.moves.map((m) => m.to));
  const vms = new Map(
    await Promise.all(plan.moves.map(async (m) => [m.vm, await findVm(clients, m.vm)] as const)),
  );
  return planChanges(plan, {
    vm(id) {
      const vm = vms.get(id);
      if (!vm) return undefined;
      const unmovable = vm.migration
        ? `has a migration in flight (${vm.migration.id})`
        : vm.state !== 'RUNNING'
          ? `is ${vm.state}`
          : vm.pinned
            ? 'was pinned'
            : undefined;
      return { fence: vm.fence, owner: vm.owner, ...(unmovable ? { unmovable } : {}) };
    },
    node(id) {
      const record = byId.get(id);
      if (!record) return { excluded: 'is gone' };
      const why = exclusionOf(record, options);
      if (why) return { excluded: `is left out: ${why}` };
      if (takers.has(id) && record.draining) return { excluded: 'is draining now' };
      return { load: view.loads.get(id) ?? 0 };
    },
  });
}

export interface ApplyDeps {
  clients: Clients;
  clock: () => number;
  /** How long each order may take before anyone may abort it. */
  orderDeadlineMs: number;
  logError: (error: unknown) => void;
}

/**
 * Applies a plan: refuses it (409/410) if it was applied, expired, or the cluster changed beyond its
 * bound; else claims it (once) and orders exactly its moves, one fenced exchange per node pair.
 */
export async function applyPlan(deps: ApplyDeps, id: string): Promise<Plan> {
  const { clients } = deps;
  const plan = await getPlan(clients, id);
  const now = deps.clock();
  if (plan.status === 'applied') throw alreadyApplied(plan);
  if (isPlanExpired(plan, now)) throw expired(plan);
  const changes = await changesSince(clients, plan, now);
  if (changes.length > 0) throw staleProblem(plan, changes);
  try {
    await markPlanApplied(clients, id, deps.clock());
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    const again = await getPlan(clients, id);
    throw again.status === 'applied' ? alreadyApplied(again) : expired(again);
  }
  const log = {
    info() {},
    warn(obj: object, msg?: string) {
      deps.logError({ ...obj, msg });
    },
  };
  const fences = new Map(plan.moves.map((m) => [m.vm, m.fence]));
  const orders: RunOrder[] = [];
  let first = 0;
  const exchanges = planExchanges(plan.moves).map((e) => ({
    requester: e.nodes[0],
    selected: e.nodes[1],
    moves: e.moves,
  }));
  const options = { orderDeadlineMs: deps.orderDeadlineMs };
  // A giver that spilled is in several of the plan's exchanges: they share one booking per node.
  const claims = runClaims(clients, { id: plan.id, options }, exchanges);
  for (const exchange of exchanges) {
    const result = await carryOut(clients, log, exchange, first, {
      id: plan.id,
      clock: deps.clock,
      options,
      fenceOf: (vm) => fences.get(vm),
      claims,
    });
    first += exchange.moves.length;
    orders.push(...result.orders);
  }
  return recordPlanOutcome(
    clients,
    id,
    orders.map((o) => ({
      vm: o.vm,
      migration: o.migration,
      outcome: o.outcome,
      ...(o.detail ? { detail: o.detail } : {}),
    })),
  );
}
