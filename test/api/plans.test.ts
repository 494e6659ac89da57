// Plans: a dry run keeps what it decided; an apply orders exactly those moves, or refuses (409/410)
// naming what changed, and changes nothing when it refuses.
import { describe, expect, it } from 'vitest';
import { DEFAULT_PLAN_TTL_MS } from '../../shared/domain/plans.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { getVm, markRunning, restartOwn } from '../../shared/storage/vms.ts';
import { aNode, anApi, aVm, NOW, PROBLEM, type TestApi } from './support.ts';

/** n1 carries 4 (vm-1: 3, vm-2: 1), n2 carries 1 (vm-3): the balancer moves vm-2 to n2. */
async function aCluster(): Promise<TestApi & { at: { now: number } }> {
  const at = { now: NOW };
  const api = await anApi({ clock: () => at.now });
  await aNode(api.clients, 'n1', { vms: { 'vm-1': 3, 'vm-2': 1 } });
  await aNode(api.clients, 'n2', { vms: { 'vm-3': 1 } });
  await aVm(api.clients, 'vm-1', 'n1');
  await aVm(api.clients, 'vm-2', 'n1');
  await aVm(api.clients, 'vm-3', 'n2');
  return Object.assign(api, { at });
}

async function dryRun(api: TestApi) {
  const res = await api.call('POST', '/v1/balance', { body: { dryRun: true } });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    id: string;
    plan: { id: string; moves: { vm: string }[]; expiresAt: number };
  };
}

describe('plans: apply the moves that were reviewed', () => {
  it('a dry run returns a plan with its moves, the fences and loads it saw, and an expiry', async () => {
    const api = await aCluster();
    const run = await dryRun(api);
    expect(run.plan).toMatchObject({
      run: run.id,
      status: 'open',
      createdAt: NOW,
      expiresAt: NOW + DEFAULT_PLAN_TTL_MS,
      moves: [{ vm: 'vm-2', from: 'n1', to: 'n2', fence: 1 }],
      loads: { n1: 4, n2: 1 },
      drift: { absolute: 0.05, relative: 0.1 },
    });
    const listed = await (await api.call('GET', '/v1/plans')).json();
    expect(listed.items.map((p: { id: string }) => p.id)).toEqual([run.plan.id]);
    expect(await (await api.call('GET', `/v1/plans/${run.plan.id}`)).json()).toEqual(run.plan);
  });

  it('applying orders exactly the planned moves, on the fence the plan saw, once', async () => {
    const api = await aCluster();
    const { plan } = await dryRun(api);
    const res = await api.call('POST', `/v1/plans/${plan.id}/apply`);
    expect(res.status).toBe(200);
    const applied = await res.json();
    expect(applied).toMatchObject({ status: 'applied', appliedAt: NOW });
    expect(applied.outcome).toEqual([{ vm: 'vm-2', migration: `${plan.id}-0`, outcome: 'written' }]);
    const vm = await getVm(api.clients, 'vm-2');
    expect(vm.migration).toMatchObject({ id: `${plan.id}-0`, from: 'n1', to: 'n2', origin: plan.id });
    for (const id of ['vm-1', 'vm-3']) expect((await getVm(api.clients, id)).migration).toBeUndefined();
    // The exchange booked both nodes, as a balancer run's does.
    expect((await getNode(api.clients, 'n2')).claim?.run).toBe(plan.id);

    const again = await api.call('POST', `/v1/plans/${plan.id}/apply`);
    expect(again.status).toBe(409);
    expect(again.headers.get('content-type')).toBe(PROBLEM);
    expect((await again.json()).detail).toMatch(/already applied/);
  });

  it('refuses with a 409 naming the VM whose fence changed, and changes nothing', async () => {
    const api = await aCluster();
    const { plan } = await dryRun(api);
    await restartOwn(api.clients, { id: 'vm-2', node: 'n1', fence: 1, now: NOW, seen: 'RUNNING' });
    await markRunning(api.clients, { id: 'vm-2', node: 'n1', fence: 2, now: NOW });
    const before = await api.snapshot();
    const res = await api.call('POST', `/v1/plans/${plan.id}/apply`);
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    const problem = await res.json();
    expect(problem.type).toBe('urn:seesaw:problem:plan-stale');
    expect(problem.detail).toContain("vm-2's fence changed from 1 to 2");
    expect(problem.changes).toEqual([
      expect.objectContaining({ kind: 'fence', vm: 'vm-2', seen: 1, now: 2 }),
    ]);
    expect(await api.snapshot()).toEqual(before);
  });

  it('refuses with a 409 naming the node whose load drifted beyond the bound', async () => {
    const api = await aCluster();
    const { plan } = await dryRun(api);
    // n2 now reports 1.2: past max(0.05, 10 % of 1) = 0.1.
    await aNode(api.clients, 'n2', { vms: { 'vm-3': 1.2 } });
    const res = await api.call('POST', `/v1/plans/${plan.id}/apply`);
    expect(res.status).toBe(409);
    const problem = await res.json();
    expect(problem.changes).toEqual([
      expect.objectContaining({ kind: 'load', node: 'n2', seen: 1, now: 1.2, bound: expect.closeTo(0.1, 9) }),
    ]);
    expect(problem.detail).toContain("n2's load drifted from 1 to 1.2");
    expect((await getVm(api.clients, 'vm-2')).migration).toBeUndefined();
  });

  it('accepts drift within the bound', async () => {
    const api = await aCluster();
    const { plan } = await dryRun(api);
    await aNode(api.clients, 'n2', { vms: { 'vm-3': 1.08 } });
    expect((await api.call('POST', `/v1/plans/${plan.id}/apply`)).status).toBe(200);
  });

  it('refuses when a target node started draining', async () => {
    const api = await aCluster();
    const { plan } = await dryRun(api);
    await api.call('PATCH', '/v1/nodes/n2', { body: { draining: true } });
    const res = await api.call('POST', `/v1/plans/${plan.id}/apply`);
    expect(res.status).toBe(409);
    expect((await res.json()).changes).toEqual([
      expect.objectContaining({ kind: 'node', node: 'n2', detail: 'n2 is draining now' }),
    ]);
  });

  it('answers 410 for an expired plan, and 404 for an unknown one', async () => {
    const api = await aCluster();
    const { plan } = await dryRun(api);
    api.at.now = plan.expiresAt;
    const before = await api.snapshot();
    const res = await api.call('POST', `/v1/plans/${plan.id}/apply`);
    expect(res.status).toBe(410);
    expect(res.headers.get('content-type')).toBe(PROBLEM);
    expect((await res.json()).detail).toMatch(/expired/);
    expect(await api.snapshot()).toEqual(before);
    const listed = await (await api.call('GET', '/v1/plans')).json();
    expect(listed.items[0]).toMatchObject({ id: plan.id, status: 'expired' });
    const unknown = await api.call('POST', '/v1/plans/plan-nope/apply');
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe(PROBLEM);
  });
});
