import { beforeAll, describe, expect, it } from 'vitest';
import { afterFailure } from '../../shared/domain/restart.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import {
  createVm,
  failVm,
  getVm,
  listVmsForNode,
  markRunning,
  orderMigration,
  recordImageRecovery,
  restartElsewhere,
  restartVm,
} from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';

const image = (seq: number) => ({
  manifest: `images/vm/1/${seq}/manifest.json`,
  seq,
  digest: `d${seq}`,
  vtod: seq * 1000,
});

describe('guest failure transitions against dynalite', () => {
  let clients: Clients;
  beforeAll(async () => {
    clients = await freshStores();
  });

  async function running(id: string, policy?: Parameters<typeof createVm>[1]['restartPolicy']) {
    await createVm(
      clients,
      { id, owner: 'n1', guest: { kind: 'cpu' }, memPages: 1, ...(policy ? { restartPolicy: policy } : {}) },
      100,
    );
    await markRunning(clients, { id, node: 'n1', fence: 1, now: 110 });
  }

  it('fails a running VM with its reason, dropping an ORDERED migration, and refuses a second write', async () => {
    await running('f1');
    await orderMigration(clients, 'f1', 1, {
      id: 'm1',
      from: 'n1',
      to: 'n2',
      phase: 'ORDERED',
      deadline: 10_000,
      orderedAt: 120,
      origin: 'test',
    });
    const next = afterFailure(undefined, 0, 200);
    const failed = await failVm(clients, {
      id: 'f1',
      node: 'n1',
      fence: 1,
      reason: 'trap in run: unreachable',
      next,
      now: 200,
    });
    expect(failed).toMatchObject({
      state: 'FAILED',
      reason: 'trap in run: unreachable',
      failures: 1,
      fence: 1,
    });
    expect(failed.migration).toBeUndefined();
    await expect(
      failVm(clients, { id: 'f1', node: 'n1', fence: 1, reason: 'again', next, now: 210 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
  });

  it('lets only the owner under its fence record a failure', async () => {
    await running('f2');
    const next = afterFailure(undefined, 0, 200);
    await expect(
      failVm(clients, { id: 'f2', node: 'n2', fence: 1, reason: 'x', next, now: 200 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    await expect(
      failVm(clients, { id: 'f2', node: 'n1', fence: 2, reason: 'x', next, now: 200 }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    expect((await getVm(clients, 'f2')).state).toBe('RUNNING');
  });

  it('backs an on-failure VM off under a new fence, then fails it once its retries are spent', async () => {
    await running('f3', { kind: 'on-failure', maxRetries: 1 });
    const first = await failVm(clients, {
      id: 'f3',
      node: 'n1',
      fence: 1,
      reason: 'timeout in run after 500 ms',
      next: afterFailure({ kind: 'on-failure', maxRetries: 1 }, 0, 1000),
      now: 1000,
    });
    expect(first).toMatchObject({ state: 'PENDING', fence: 2, failures: 1, retryAt: 11_000, owner: 'n1' });
    await markRunning(clients, { id: 'f3', node: 'n1', fence: 2, now: 12_000 });
    const second = await failVm(clients, {
      id: 'f3',
      node: 'n1',
      fence: 2,
      reason: 'timeout in run after 500 ms',
      next: afterFailure(first.restartPolicy, first.failures ?? 0, 13_000),
      now: 13_000,
    });
    expect(second).toMatchObject({ state: 'FAILED', fence: 2, failures: 2 });
    expect(second.retryAt).toBeUndefined();
  });

  it('never lets the reaper restart a FAILED VM, and restarts it by hand only from FAILED', async () => {
    await running('f4');
    await failVm(clients, {
      id: 'f4',
      node: 'n1',
      fence: 1,
      reason: 'memory limit of 1 pages exceeded',
      next: afterFailure(undefined, 0, 200),
      now: 200,
    });
    await expect(
      restartElsewhere(clients, {
        id: 'f4',
        deadNode: 'n1',
        fence: 1,
        node: 'n2',
        now: 300,
        seen: 'RUNNING',
      }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    await expect(restartVm(clients, { id: 'f4', fence: 0, node: 'n2', now: 300 })).rejects.toBeInstanceOf(
      ConditionFailed,
    );
    const again = await restartVm(clients, { id: 'f4', fence: 1, node: 'n2', now: 300 });
    expect(again).toMatchObject({ state: 'PENDING', owner: 'n2', fence: 2, failures: 0 });
    expect(again.reason).toBeUndefined();
    expect((await listVmsForNode(clients, 'n2')).map((v) => v.id)).toContain('f4');
    await expect(restartVm(clients, { id: 'f4', fence: 2, node: 'n2', now: 310 })).rejects.toBeInstanceOf(
      ConditionFailed,
    );
  });

  it('records an image recovery only for the broken image the table still names', async () => {
    await createVm(clients, { id: 'f5', owner: 'n1', guest: { kind: 'cpu' }, memPages: 1 }, 100);
    await markRunning(clients, { id: 'f5', node: 'n1', fence: 1, now: 110 });
    const { recordCheckpoint } = await import('../../shared/storage/vms.ts');
    await recordCheckpoint(clients, { id: 'f5', node: 'n1', fence: 1, image: image(3), now: 120 });
    await restartElsewhere(clients, {
      id: 'f5',
      deadNode: 'n1',
      fence: 1,
      node: 'n1',
      now: 130,
      seen: 'RUNNING',
    });
    const recovery = {
      broken: image(3).manifest,
      why: 'missing',
      restored: image(2).manifest,
      lostSeconds: 1,
      at: 140,
    };
    await expect(
      recordImageRecovery(clients, {
        id: 'f5',
        node: 'n1',
        fence: 2,
        image: image(2),
        recovery: { ...recovery, broken: 'other' },
      }),
    ).rejects.toBeInstanceOf(ConditionFailed);
    const out = await recordImageRecovery(clients, {
      id: 'f5',
      node: 'n1',
      fence: 2,
      image: image(2),
      recovery,
    });
    expect(out.image).toEqual(image(2));
    expect(out.recovery).toEqual(recovery);
  });
});
