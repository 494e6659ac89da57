import { afterEach, describe, expect, it, vi } from 'vitest';
import { startBalancerLoop } from '../../functions/balancer/loop.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { createRng } from '../../shared/domain/rng.ts';
import { putBalancingConfig } from '../../shared/storage/config-store.ts';
import { listRuns, type RunRecord } from '../../shared/storage/runs.ts';
import { seedCluster } from '../support/balancer-cluster.ts';
import { freshStores, storeEnv } from '../support/stores.ts';

describe('the balancer Lambda entry', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('runs one shard from the schedule event, stores the record and prints one EMF metric line (Powertools)', async () => {
    const clients = await freshStores();
    await seedCluster(clients, Date.now(), [
      {
        id: 'a',
        vms: [
          { id: 'v1', cpu: 1 },
          { id: 'v2', cpu: 0.6 },
        ],
      },
      { id: 'b' },
    ]);
    for (const [key, value] of Object.entries(storeEnv(clients))) vi.stubEnv(key, value);
    vi.stubEnv('SEESAW_CLUSTER', 'test-cluster');
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const { handler } = await import('../../functions/balancer/handler.ts');

    const out = await handler({ shard: 0, shards: 1 });
    await expect(handler({ shard: -1 })).rejects.toThrow(/shard must be a non-negative integer/);
    vi.restoreAllMocks();

    expect(out).toMatchObject({ shard: 0, exchanges: 1, ordersWritten: 1, ordersLost: 0 });
    expect((await listRuns(clients)).items.map((r) => r.id)).toEqual([out.run]);
    const metrics = lines
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line));
    expect(metrics).toHaveLength(1);
    expect(metrics[0]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: 'Seesaw', Dimensions: [['service', 'Cluster']] }] },
      service: 'seesaw-balancer',
      Cluster: 'test-cluster',
      Exchanges: 1,
      run: out.run,
    });
    expect(metrics[0].ImbalanceCV).toBeCloseTo(1, 5);
  });

  it('runs one balancer per shard each tick locally, with the shard count from the stored config, until stopped', async () => {
    const clients = await freshStores();
    const now = Date.now();
    await putBalancingConfig(clients, { ...DEFAULT_BALANCING_CONFIG, shards: 2 }, now);
    await seedCluster(clients, now, [{ id: 'a', vms: [{ id: 'v1', cpu: 1 }] }, { id: 'b' }, { id: 'c' }]);
    const records: RunRecord[] = [];
    const loop = startBalancerLoop(
      { clients, clock: Date.now, rng: createRng(1), log: { info() {}, warn() {} } },
      { intervalMs: 100, onRun: (record) => records.push(record) },
    );
    await vi.waitFor(() => expect(records.length).toBeGreaterThanOrEqual(4), {
      timeout: 20_000,
      interval: 50,
    });
    await loop.stop();
    const seen = records.length;
    const first = records.slice(0, 2);
    expect(first.map((r) => r.shard).sort()).toEqual([0, 1]);
    expect(first.every((r) => r.shards === 2 && r.round === first[0]?.round)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(records).toHaveLength(seen);
    expect(() =>
      startBalancerLoop({ clients, clock: Date.now, rng: createRng(1), log: console }, { intervalMs: 0 }),
    ).toThrow(/intervalMs must be positive/);
  });
});
