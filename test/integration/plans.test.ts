// The plans storage module against dynalite: put once, list newest first, apply at most once and
// never after expiry, TTL set past the expiry.
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DRIFT, type Plan } from '../../shared/domain/plans.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed, NotFound } from '../../shared/storage/errors.ts';
import { planKey } from '../../shared/storage/keys.ts';
import {
  getPlan,
  listPlans,
  markPlanApplied,
  PLAN_RETENTION_MS,
  putPlan,
  recordPlanOutcome,
} from '../../shared/storage/plans.ts';
import { freshStores } from '../support/stores.ts';

const aPlan = (id: string, createdAt: number, ttl = 60_000): Plan => ({
  id,
  run: `run-${id}`,
  createdAt,
  expiresAt: createdAt + ttl,
  status: 'open',
  moves: [{ vm: 'vm-1', from: 'a', to: 'b', loadOnSource: 1, loadOnTarget: 1.2, fence: 3 }],
  loads: { a: 4, b: 1 },
  drift: DEFAULT_DRIFT,
});

describe('plans storage against dynalite', () => {
  let clients: Clients;
  beforeAll(async () => {
    clients = await freshStores();
  });

  it('stores a plan once, reads it back, and sets its TTL past the expiry', async () => {
    const plan = aPlan('p1', 1000);
    await putPlan(clients, plan);
    await expect(putPlan(clients, plan)).rejects.toBeInstanceOf(ConditionFailed);
    expect(await getPlan(clients, 'p1')).toEqual(plan);
    const raw = await clients.doc.send(new GetCommand({ TableName: clients.tableName, Key: planKey('p1') }));
    expect(raw.Item?.expiresAt).toBe(Math.floor((plan.expiresAt + PLAN_RETENTION_MS) / 1000));
    await expect(getPlan(clients, 'nope')).rejects.toBeInstanceOf(NotFound);
  });

  it('lists plans newest first, a page at a time', async () => {
    await putPlan(clients, aPlan('p2', 3000));
    await putPlan(clients, aPlan('p3', 2000));
    const first = await listPlans(clients, { limit: 2 });
    expect(first.items.map((p) => p.id)).toEqual(['p2', 'p3']);
    const rest = await listPlans(clients, { limit: 2, ...(first.next ? { cursor: first.next } : {}) });
    expect(rest.items.map((p) => p.id)).toEqual(['p1']);
  });

  it('marks a plan applied at most once, and records the outcome', async () => {
    await putPlan(clients, aPlan('p4', 10_000));
    const applied = await markPlanApplied(clients, 'p4', 10_500);
    expect(applied).toMatchObject({ status: 'applied', appliedAt: 10_500 });
    await expect(markPlanApplied(clients, 'p4', 10_600)).rejects.toBeInstanceOf(ConditionFailed);
    const out = await recordPlanOutcome(clients, 'p4', [
      { vm: 'vm-1', migration: 'p4-0', outcome: 'written' },
    ]);
    expect(out.outcome).toEqual([{ vm: 'vm-1', migration: 'p4-0', outcome: 'written' }]);
  });

  it('refuses to apply an expired plan or one that does not exist', async () => {
    await putPlan(clients, aPlan('p5', 20_000, 1000));
    await expect(markPlanApplied(clients, 'p5', 21_000)).rejects.toBeInstanceOf(ConditionFailed);
    expect((await getPlan(clients, 'p5')).status).toBe('open');
    await expect(markPlanApplied(clients, 'missing', 0)).rejects.toBeInstanceOf(ConditionFailed);
    await expect(
      recordPlanOutcome(clients, 'p5', [{ vm: 'vm-1', migration: 'p5-0', outcome: 'written' }]),
    ).rejects.toBeInstanceOf(ConditionFailed);
  });
});
