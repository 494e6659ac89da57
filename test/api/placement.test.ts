// The API places VMs with the domain's placementCandidates: anti-affinity, drain, memory and pin
// apply, and load is compared under each node's weights, as the balancer compares it.
import { describe, expect, it } from 'vitest';
import { aNode, anApi, aVm, PROBLEM } from './support.ts';

describe('placement through the API', () => {
  it('avoids a node that already runs a VM of the same anti-affinity group, and refuses it by name', async () => {
    const api = await anApi();
    // n1 is the less loaded node, but it runs db-1 of group db.
    await aNode(api.clients, 'n1', { vms: { 'db-1': 0.2 }, groups: { 'db-1': 'db' } });
    await aNode(api.clients, 'n2', { vms: { 'web-1': 2 } });
    const auto = await api.call('POST', '/v1/vms', { body: { guest: 'cpu', group: 'db' } });
    expect(auto.status).toBe(201);
    expect((await auto.json()).owner).toBe('n2');
    const ungrouped = await api.call('POST', '/v1/vms', { body: { guest: 'cpu' } });
    expect((await ungrouped.json()).owner).toBe('n1');

    const before = await api.snapshot();
    const named = await api.call('POST', '/v1/vms', { body: { guest: 'cpu', group: 'db', node: 'n1' } });
    expect(named.status).toBe(422);
    expect(named.headers.get('content-type')).toBe(PROBLEM);
    expect((await named.json()).detail).toBe(
      'cannot place the VM there: node n1 already runs a VM of anti-affinity group db',
    );
    expect(await api.snapshot()).toEqual(before);
  });

  it('answers 409 naming each node’s reason when no node may take the VM', async () => {
    const api = await anApi();
    await aNode(api.clients, 'n1', { vms: { 'db-1': 1 }, groups: { 'db-1': 'db' } });
    await aNode(api.clients, 'n2', { live: false });
    const res = await api.call('POST', '/v1/vms', { body: { guest: 'cpu', group: 'db' } });
    expect(res.status).toBe(409);
    expect((await res.json()).detail).toBe(
      'no node can place the VM: node n1 already runs a VM of anti-affinity group db; node n2 is not live (its lease lapsed)',
    );
  });

  it('keeps migrate and resume to the same rules', async () => {
    const api = await anApi();
    await aNode(api.clients, 'n1', { vms: { 'vm-1': 1 } });
    await aNode(api.clients, 'n2', { vms: { 'db-1': 1 }, groups: { 'db-1': 'db' } });
    await aVm(api.clients, 'vm-1', 'n1', 'RUNNING', { group: 'db' });
    const res = await api.call('POST', '/v1/vms/vm-1/migrate', { body: { to: 'auto' } });
    expect(res.status).toBe(409);
    expect((await res.json()).detail).toMatch(/anti-affinity group db/);
    await aVm(api.clients, 'vm-2', 'n1', 'SUSPENDED', { group: 'db' });
    const resumed = await api.call('POST', '/v1/vms/vm-2/resume', { body: { node: 'n2' } });
    expect(resumed.status).toBe(422);
  });

  it('compares loads under each node’s weights, as the balancer does', async () => {
    const api = await anApi();
    // Raw CPU: fast holds 1.5, slow 1.0. Under weights: fast 0.75 (+0.5 for a core), slow 2 (+2).
    await aNode(api.clients, 'fast', { vms: { 'a-1': 1.5 }, weights: { cpu: 0.5, io: 0, mem: 0 } });
    await aNode(api.clients, 'slow', { vms: { 'b-1': 1 }, weights: { cpu: 2, io: 0, mem: 0 } });
    const res = await api.call('POST', '/v1/vms', { body: { guest: 'cpu', targetLoad: 0.5 } });
    expect((await res.json()).owner).toBe('fast');
  });

  it('keeps cpuLimit apart from targetLoad, validates it, and clears it with null', async () => {
    const api = await anApi();
    await aNode(api.clients, 'n1');
    const res = await api.call('POST', '/v1/vms', { body: { guest: 'cpu', cpuLimit: 0.5, targetLoad: 2 } });
    expect(res.status).toBe(201);
    const vm = await res.json();
    expect(vm).toMatchObject({ cpuLimit: 0.5, targetLoad: 2 });
    const before = await api.snapshot();
    for (const cpuLimit of [0, -1, 'half'])
      expect((await api.call('POST', '/v1/vms', { body: { guest: 'cpu', cpuLimit } })).status).toBe(400);
    expect(await api.snapshot()).toEqual(before);
    const cleared = await api.call('PATCH', `/v1/vms/${vm.id}`, { body: { cpuLimit: null } });
    expect(await cleared.json()).toMatchObject({ cpuLimit: null, targetLoad: 2 });
  });

  it('expects a limited VM to add only its limit when it compares nodes', async () => {
    const api = await anApi();
    // Under weights: a carries 1 (cpu 1), b carries 0 but a core there costs 3.
    await aNode(api.clients, 'a', { vms: { 'a-1': 1 } });
    await aNode(api.clients, 'b', { weights: { cpu: 3, io: 0, mem: 0 } });
    // A whole core: a → 2, b → 3; half a core: a → 1.5, b → 1.5, a tie that goes to b (it carries less).
    const whole = await (await api.call('POST', '/v1/vms', { body: { guest: 'cpu' } })).json();
    expect(whole.owner).toBe('a');
    const api2 = await anApi();
    await aNode(api2.clients, 'a', { vms: { 'a-1': 1 } });
    await aNode(api2.clients, 'b', { weights: { cpu: 3, io: 0, mem: 0 } });
    const limited = await (
      await api2.call('POST', '/v1/vms', { body: { guest: 'cpu', cpuLimit: 0.25 } })
    ).json();
    expect(limited.owner).toBe('b');
  });
});
