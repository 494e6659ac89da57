import { afterEach, describe, expect, it, vi } from 'vitest';
import { listRuns } from '../../shared/storage/runs.ts';
import { seedCluster } from '../support/balancer-cluster.ts';
import { freshStores, storeEnv } from '../support/stores.ts';

describe('the balancer Lambda entry', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it('runs one shard from the schedule event, stores the record and prints one EMF metric line', async () => {
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
      _aws: { CloudWatchMetrics: [{ Namespace: 'Seesaw', Dimensions: [['Cluster']] }] },
      Cluster: 'test-cluster',
      Exchanges: 1,
      run: out.run,
    });
    expect(metrics[0].ImbalanceCV).toBeCloseTo(1, 5);
  });
});
