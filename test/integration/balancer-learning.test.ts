import { describe, expect, it } from 'vitest';
import { runBalancer } from '../../functions/balancer/run.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import type { LoadFactors } from '../../shared/domain/types.ts';
import {
  getBalancingConfig,
  patchBalancingConfig,
  putBalancingConfig,
} from '../../shared/storage/config-store.ts';
import { InvalidInput } from '../../shared/storage/errors.ts';
import { listRuns } from '../../shared/storage/runs.ts';
import {
  applyOrders,
  balancerDeps,
  factorsOf,
  type NodeFixture,
  seedCluster,
} from '../support/balancer-cluster.ts';
import { freshStores } from '../support/stores.ts';

const NOW = 1_700_000_000_000;

describe('the balancing config item', () => {
  it('reads the defaults when absent, stores a validated config and lays a partial one over it', async () => {
    const clients = await freshStores();
    expect(await getBalancingConfig(clients)).toEqual(DEFAULT_BALANCING_CONFIG);
    await expect(
      putBalancingConfig(clients, { ...DEFAULT_BALANCING_CONFIG, thresholdFactor: 0.5 }, NOW),
    ).rejects.toThrow(InvalidInput);
    await expect(putBalancingConfig(clients, { pairing: 'random' }, NOW)).rejects.toThrow(
      /invalid balancing config/,
    );
    await putBalancingConfig(clients, { ...DEFAULT_BALANCING_CONFIG, pairing: 'random' }, NOW);
    const patched = await patchBalancingConfig(clients, { margin: 0.2 }, NOW + 1);
    expect(patched).toEqual({ ...DEFAULT_BALANCING_CONFIG, pairing: 'random', margin: 0.2 });
    expect(await getBalancingConfig(clients)).toEqual(patched);
    await expect(patchBalancingConfig(clients, { shards: 0 }, NOW + 2)).rejects.toThrow(InvalidInput);

    const record = await runBalancer(balancerDeps(clients, NOW), { round: 1, dryRun: true });
    expect(record.config).toEqual(patched);
  });
});

describe('run records and shards', () => {
  it('lists run records newest first, a page at a time', async () => {
    const clients = await freshStores();
    await seedCluster(clients, NOW + 20_000, [{ id: 'a', vms: [{ id: 'v', cpu: 1 }] }, { id: 'b' }]);
    const ids: string[] = [];
    for (const at of [NOW, NOW + 10_000, NOW + 20_000]) {
      ids.push((await runBalancer(balancerDeps(clients, at), { round: at / 10_000 })).id);
    }
    const first = await listRuns(clients, { limit: 2 });
    expect(first.items.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    expect(first.next).toBeDefined();
    const second = await listRuns(clients, { limit: 2, ...(first.next ? { cursor: first.next } : {}) });
    expect(second.items.map((r) => r.id)).toEqual([ids[0]]);
    expect(second.items[0]).not.toHaveProperty('pk');
  });

  it('splits the nodes between the shards of a round, each run reading its own shard', async () => {
    const clients = await freshStores();
    const fixture: NodeFixture[] = Array.from({ length: 16 }, (_, i) => ({
      id: `n${i}`,
      vms: i % 2 === 0 ? [{ id: `v${i}`, cpu: 1 }] : [],
    }));
    await seedCluster(clients, NOW, fixture);
    const runs = await Promise.all(
      [0, 1, 2].map((shard) =>
        runBalancer(balancerDeps(clients, NOW, shard), { round: 9, shard, shards: 3 }),
      ),
    );
    const considered = runs.map((r) => r.nodes.considered);
    expect(considered.reduce((a, b) => a + b, 0)).toBe(16);
    const members = runs.map((r) => new Set(r.pairs.flatMap((p) => [p.requester, p.selected])));
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        expect([...(members[i] ?? [])].filter((n) => members[j]?.has(n))).toEqual([]);
      }
    }
    expect(runs.map((r) => [r.shard, r.shards])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
  });
});

describe('learning from outcomes, through the table', () => {
  it('penalises an exchange that did not pay off, says so, and keeps the VM still while the penalty lasts', async () => {
    const clients = await freshStores();
    await putBalancingConfig(
      clients,
      { ...DEFAULT_BALANCING_CONFIG, cooldownMs: 0, maxMigrationsPerNode: 1 },
      NOW,
    );
    const fixture: NodeFixture[] = [
      {
        id: 'a',
        vms: [
          { id: 'x', cpu: 0.6 },
          { id: 'y', cpu: 0.5 },
        ],
      },
      { id: 'b', vms: [{ id: 'z', cpu: 0.1 }] },
    ];
    await seedCluster(clients, NOW, fixture);
    const factors = new Map<string, LoadFactors>([
      ['x', factorsOf(0.6)],
      ['y', factorsOf(0.5)],
      ['z', factorsOf(0.1)],
    ]);

    const first = await runBalancer(balancerDeps(clients, NOW), { round: 1 });
    expect(first.ordersWritten).toBe(1);
    const moved = first.orders[0]?.vm as string;

    // The moved VM turns out far heavier on its new node than predicted: the exchange did not pay off.
    factors.set(moved, factorsOf(2));
    const t2 = NOW + 15_000;
    await applyOrders(clients, fixture, factors, t2);
    const second = await runBalancer(balancerDeps(clients, t2), { round: 2 });

    expect(second.learning.evaluated).toEqual([
      expect.objectContaining({ exchange: `${first.id}#0`, from: 'a', to: 'b', paidOff: false }),
    ]);
    expect(second.learning.penalties).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'pair', key: 'a|b', reason: 'no-payoff', strikes: 1 }),
        expect.objectContaining({ kind: 'vm', key: moved, reason: 'no-payoff', cooldownUntil: t2 + 120_000 }),
      ]),
    );
    expect(second.pairs.flatMap((p) => p.moves).map((m) => m.vm)).not.toContain(moved);

    const t3 = t2 + 15_000;
    await applyOrders(clients, fixture, factors, t3);
    const third = await runBalancer(balancerDeps(clients, t3), { round: 3 });
    expect(third.learning.active).toBeGreaterThanOrEqual(2);
    expect(third.learning.evaluated.map((o) => o.exchange)).not.toContain(`${first.id}#0`);
    expect(third.pairs.flatMap((p) => p.moves).map((m) => m.vm)).not.toContain(moved);
    expect(third.convergence.targetCv).toBe(0.05);
  });
});
