// The API's own access patterns (Idempotency-Key records, fenced settings changes, node lookups)
// against dynalite with the real AWS SDK.
import { beforeAll, describe, expect, it } from 'vitest';
import { ConditionFailed } from '../../shared/errors.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import {
  claimIdempotencyKey,
  findIdempotencyRecord,
  forgetIdempotencyKey,
  storeIdempotentResponse,
} from '../../shared/storage/idempotency.ts';
import { findNode, listNodesById } from '../../shared/storage/node-lookups.ts';
import { registerNode } from '../../shared/storage/nodes.ts';
import { patchVmAtFence } from '../../shared/storage/vm-settings.ts';
import { createVm, getVm } from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';

const aClaim = (startedAt: number, fingerprint = 'fp-1') => ({
  fingerprint,
  startedAt,
  expiresAt: startedAt + 100,
  abandonedBefore: startedAt - 120,
});

describe('the API data access against dynalite', () => {
  let clients: Clients;
  beforeAll(async () => {
    clients = await freshStores();
  });

  it('claims a free Idempotency-Key once, refuses a second live claim and stores the response', async () => {
    await claimIdempotencyKey(clients, 'k1', aClaim(1000));
    await expect(claimIdempotencyKey(clients, 'k1', aClaim(1001, 'fp-2'))).rejects.toBeInstanceOf(
      ConditionFailed,
    );
    expect(await findIdempotencyRecord(clients, 'k1')).toMatchObject({
      fingerprint: 'fp-1',
      startedAt: 1000,
    });
    const response = { status: 201, contentType: 'application/json', body: 'e30=' };
    await storeIdempotentResponse(clients, 'k1', {
      fingerprint: 'fp-1',
      startedAt: 1000,
      expiresAt: 1100,
      response,
    });
    expect((await findIdempotencyRecord(clients, 'k1'))?.response).toEqual(response);
    // Answered and not expired: still taken.
    await expect(claimIdempotencyKey(clients, 'k1', aClaim(1050))).rejects.toBeInstanceOf(ConditionFailed);
  });

  it('lets a new attempt take an expired key or an abandoned claim, and forgets a failed one', async () => {
    await claimIdempotencyKey(clients, 'k2', aClaim(1000));
    await claimIdempotencyKey(clients, 'k2', aClaim(1100, 'fp-expired')); // expiresAt 1100 <= now
    expect((await findIdempotencyRecord(clients, 'k2'))?.fingerprint).toBe('fp-expired');
    await claimIdempotencyKey(clients, 'k3', { ...aClaim(1000), expiresAt: 9999 });
    await claimIdempotencyKey(clients, 'k3', aClaim(1120, 'fp-abandoned')); // no response since 1000
    expect((await findIdempotencyRecord(clients, 'k3'))?.fingerprint).toBe('fp-abandoned');
    await forgetIdempotencyKey(clients, 'k3');
    expect(await findIdempotencyRecord(clients, 'k3')).toBeUndefined();
  });

  it('changes settings only at the fence read, clearing a null and leaving the rest', async () => {
    const vm = await createVm(
      clients,
      { id: 'vm-s', owner: 'n1', guest: { kind: 'cpu' }, memPages: 4, targetLoad: 3, group: 'g' },
      1000,
    );
    const updated = await patchVmAtFence(clients, {
      id: 'vm-s',
      fence: vm.fence,
      patch: { targetLoad: null, pinned: true, cpuLimit: 0.5 },
      now: 2000,
    });
    expect(updated).toMatchObject({ pinned: true, cpuLimit: 0.5, group: 'g', updatedAt: 2000 });
    expect(updated.targetLoad).toBeUndefined();
    await expect(
      patchVmAtFence(clients, { id: 'vm-s', fence: vm.fence + 1, patch: { pinned: false }, now: 3000 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    await expect(
      patchVmAtFence(clients, { id: 'vm-none', fence: 0, patch: { pinned: false }, now: 3000 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    expect((await getVm(clients, 'vm-s')).pinned).toBe(true);
  });

  it('finds a node by id, undefined for an unknown one, and lists nodes by id', async () => {
    const spec = { capacity: 4, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 4096 };
    await registerNode(clients, {
      spec: { id: 'na', ...spec },
      incarnation: 'inc',
      now: 1000,
      leaseMs: 5000,
    });
    await registerNode(clients, {
      spec: { id: 'nb', ...spec },
      incarnation: 'inc',
      now: 1000,
      leaseMs: 5000,
    });
    expect((await findNode(clients, 'na'))?.id).toBe('na');
    expect(await findNode(clients, 'nz')).toBeUndefined();
    expect([...(await listNodesById(clients)).keys()].sort()).toEqual(['na', 'nb']);
  });
});
