// Per-shard reads against dynalite: node items carry a stable bucket in the byBucket index, and a
// sharded run reads the buckets its round deals it, not the whole fleet.
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { runBalancer } from '../../functions/balancer/run.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { createRng } from '../../shared/domain/rng.ts';
import { bucketOf, groupOf, nodesInShard } from '../../shared/domain/shards.ts';
import { ensureTableAndBucket, localClients } from '../../shared/local/stores.ts';
import { putBalancingConfig } from '../../shared/storage/config-store.ts';
import { meteredClients, newUsage } from '../../shared/storage/metered.ts';
import { listNodesInBuckets, listShardNodes, registerNode, renewLease } from '../../shared/storage/nodes.ts';
import { createTableInput } from '../../shared/storage/schema.ts';
import { type NodeFixture, seedCluster } from '../support/balancer-cluster.ts';
import { freshStores } from '../support/stores.ts';

const NOW = 1_700_000_000_000;
const quiet = { info() {}, warn() {} };
const spec = (id: string) => ({
  id,
  capacity: 4,
  weights: { cpu: 1, io: 0, mem: 0 },
  memCapacityPages: 1024,
});

describe('per-shard node reads', () => {
  it('reads each shard’s nodes alone: disjoint, complete, and the same sets the domain deals', async () => {
    const clients = await freshStores();
    const ids = Array.from({ length: 120 }, (_, i) => `node-${i}`);
    for (const id of ids)
      await registerNode(clients, { spec: spec(id), incarnation: 'inc', now: NOW, leaseMs: 60_000 });
    const shards = 4;
    const seen = new Set<string>();
    for (let shard = 0; shard < shards; shard++) {
      const usage = newUsage();
      const metered = meteredClients(clients, usage);
      const read = (await listShardNodes(metered, { round: 9, shard, shards })).map((n) => n.id);
      expect(new Set(read)).toEqual(new Set(nodesInShard(ids, 9, shard, shards)));
      expect(usage.reads).toBe(read.length);
      for (const id of read) {
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
    }
    expect(seen.size).toBe(ids.length);
  });

  it('files a node under its bucket when it registers and again on every lease renewal', async () => {
    const clients = await freshStores();
    await registerNode(clients, { spec: spec('solo'), incarnation: 'inc', now: NOW, leaseMs: 60_000 });
    const bucket = bucketOf('solo');
    const own = { group: groupOf(bucket), bucket };
    expect((await listNodesInBuckets(clients, [own])).map((n) => n.id)).toEqual(['solo']);
    expect((await listNodesInBuckets(clients, [{ group: groupOf(bucket) }])).map((n) => n.id)).toEqual([
      'solo',
    ]);
    const next = (bucket + 1) % 1024;
    expect(await listNodesInBuckets(clients, [{ group: groupOf(next), bucket: next }])).toEqual([]);
    const renewed = await renewLease(clients, {
      id: 'solo',
      incarnation: 'inc',
      now: NOW + 1000,
      leaseMs: 60_000,
    });
    expect(renewed).toMatchObject({ gsi3sk: `${String(bucket).padStart(4, '0')}#solo` });
    expect((await listNodesInBuckets(clients, [own])).map((n) => n.id)).toEqual(['solo']);
  });

  it('has a sharded balancer run read about N/shards node items and decide over them', async () => {
    const clients = await freshStores();
    await putBalancingConfig(clients, { ...DEFAULT_BALANCING_CONFIG, shards: 4 }, NOW - 1000);
    const fixture: NodeFixture[] = Array.from({ length: 80 }, (_, i) => ({
      id: `n${i}`,
      vms:
        i % 2 === 0
          ? [
              { id: `n${i}-a`, cpu: 0.9 },
              { id: `n${i}-b`, cpu: 0.8 },
            ]
          : [],
    }));
    await seedCluster(clients, NOW, fixture);
    const ids = fixture.map((n) => n.id);
    let total = 0;
    for (let shard = 0; shard < 4; shard++) {
      const record = await runBalancer(
        { clients, clock: () => NOW, rng: createRng(shard), log: quiet },
        { round: 3, shard },
      );
      const mine = nodesInShard(ids, 3, shard, 4).length;
      expect(record.nodes.read).toBe(mine);
      expect(record.nodes.inShard).toBe(mine);
      expect(mine).toBeLessThan(ids.length / 2);
      total += record.nodes.read;
      // Each node of the shard is either considered or skipped with a reason, never silently dropped.
      expect(record.nodes.considered).toBe(mine);
    }
    expect(total).toBe(ids.length);
  });

  it('falls back to the kind index on a table created before the byBucket index', async () => {
    const suffix = Math.random().toString(36).slice(2, 10);
    const clients = localClients(inject('stores'), {
      tableName: `seesaw-old-${suffix}`,
      bucketName: `seesaw-old-${suffix}`,
    });
    const input = createTableInput(clients.tableName);
    await clients.dynamo.send(
      new CreateTableCommand({
        ...input,
        AttributeDefinitions: input.AttributeDefinitions.filter((a) => !a.AttributeName.startsWith('gsi3')),
        GlobalSecondaryIndexes: input.GlobalSecondaryIndexes.filter((i) => i.IndexName !== 'byBucket'),
      }),
    );
    await ensureTableAndBucket(clients);
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const id of ids)
      await registerNode(clients, { spec: spec(id), incarnation: 'inc', now: NOW, leaseMs: 60_000 });
    const read = await listShardNodes(clients, { round: 1, shard: 0, shards: 2 });
    // Every node comes back; the run's own shard filter narrows them.
    expect(read.map((n) => n.id).sort()).toEqual(ids);
    const record = await runBalancer(
      { clients, clock: () => NOW, rng: createRng(1), log: quiet },
      { round: 1, shard: 0, shards: 2 },
    );
    expect(record.nodes.inShard).toBe(nodesInShard(ids, 1, 0, 2).length);
  });
});
