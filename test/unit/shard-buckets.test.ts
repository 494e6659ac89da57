import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BUCKET_GROUPS,
  bucketOf,
  bucketsInShard,
  groupOf,
  NODE_BUCKETS,
  nodesInShard,
  roundAt,
  shardOf,
  shardOfBucket,
  shardReads,
} from '../../shared/domain/shards.ts';

/** A node id, a round and a shard count of 1 to 64. */
const nodeRoundShards = fc.tuple(
  fc.string(),
  fc.integer({ min: 0, max: 1e9 }),
  fc.integer({ min: 1, max: 64 }),
);

describe('shard buckets', () => {
  it('deals every bucket to exactly one shard per round, in equal shares (±1 group or bucket)', () => {
    for (const shards of [1, 3, 10, 64, 100, 1024]) {
      const unit = shards <= BUCKET_GROUPS ? NODE_BUCKETS / BUCKET_GROUPS : 1;
      const seen = new Set<number>();
      let smallest = Number.POSITIVE_INFINITY;
      let largest = 0;
      for (let shard = 0; shard < shards; shard++) {
        const buckets = bucketsInShard(42, shard, shards);
        for (const b of buckets) {
          expect(seen.has(b)).toBe(false);
          seen.add(b);
        }
        smallest = Math.min(smallest, buckets.length / unit);
        largest = Math.max(largest, buckets.length / unit);
      }
      expect(seen.size).toBe(NODE_BUCKETS);
      expect(largest - smallest).toBeLessThanOrEqual(1);
    }
  });

  it('puts a node in its bucket’s shard, and its bucket never changes', () => {
    fc.assert(
      fc.property(nodeRoundShards, ([id, round, shards]) => {
        const bucket = bucketOf(id);
        return (
          bucket === bucketOf(id) &&
          bucket >= 0 &&
          bucket < NODE_BUCKETS &&
          shardOf(id, round, shards) === shardOfBucket(bucket, round, shards) &&
          bucketsInShard(round, shardOf(id, round, shards), shards).includes(bucket)
        );
      }),
      { numRuns: 200 },
    );
  });

  it('regroups the buckets every round, so buckets in different shards meet later', () => {
    // Pinned: buckets 0 and 16 (different groups) with 10 shards meet within 40 rounds, not every round.
    const together = (round: number) => shardOfBucket(0, round, 10) === shardOfBucket(16, round, 10);
    const rounds = Array.from({ length: 40 }, (_, r) => together(r));
    expect(rounds).toContain(true);
    expect(rounds).toContain(false);
    // Every pair of 64 buckets spread over the groups meets within 200 rounds, at 4 and at 100 shards.
    for (const shards of [4, 100]) {
      const met = new Set<string>();
      const spread = Array.from({ length: 64 }, (_, k) => k * 16 + (k % 16));
      for (let round = 0; round < (shards === 4 ? 200 : 2000); round++)
        for (const a of spread)
          for (const b of spread)
            if (a < b && shardOfBucket(a, round, shards) === shardOfBucket(b, round, shards))
              met.add(`${a}|${b}`);
      expect(met.size).toBe((64 * 63) / 2);
    }
  });

  it('refuses more shards than buckets', () => {
    expect(() => shardOf('a', 1, NODE_BUCKETS + 1)).toThrow(/at most 1024/);
  });
});

describe('shard reads', () => {
  it('cover exactly the shard’s buckets: whole groups up to 64 shards, single buckets beyond', () => {
    for (const shards of [2, 10, 64, 65, 300]) {
      for (const shard of [0, shards - 1]) {
        const reads = shardReads(5, shard, shards);
        const covered = reads.flatMap((r) =>
          r.bucket === undefined ? Array.from({ length: 16 }, (_, k) => r.group * 16 + k) : [r.bucket],
        );
        expect(covered.sort((a, b) => a - b)).toEqual(bucketsInShard(5, shard, shards));
        for (const r of reads) if (r.bucket !== undefined) expect(groupOf(r.bucket)).toBe(r.group);
        // Few queries per run: at most ceil(64 / shards) groups, or ceil(1024 / shards) buckets.
        expect(reads.length).toBeLessThanOrEqual(
          shards <= BUCKET_GROUPS ? Math.ceil(BUCKET_GROUPS / shards) : Math.ceil(NODE_BUCKETS / shards),
        );
      }
    }
  });
});

describe('shards of nodes', () => {
  it('puts every node in exactly one shard per round, roughly evenly', () => {
    const ids = Array.from({ length: 4000 }, (_, i) => `node-${i}`);
    const shards = 4;
    const sizes = Array.from({ length: shards }, (_, s) => nodesInShard(ids, 17, s, shards).length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(ids.length);
    for (const size of sizes) expect(Math.abs(size - 1000)).toBeLessThan(150);
  });

  it('lets every pair of nodes share a shard within a few rounds', () => {
    const ids = Array.from({ length: 40 }, (_, i) => `n${i}`);
    const met = new Set<string>();
    for (let round = 0; round < 60; round++) {
      for (let s = 0; s < 4; s++) {
        const members = nodesInShard(ids, round, s, 4);
        for (const a of members) for (const b of members) if (a < b) met.add(`${a}|${b}`);
      }
    }
    expect(met.size).toBe((40 * 39) / 2);
  });

  it('is a pure function of node, round and shard count', () => {
    fc.assert(
      fc.property(nodeRoundShards, ([id, round, n]) => {
        const s = shardOf(id, round, n);
        return s === shardOf(id, round, n) && s >= 0 && s < n && Number.isInteger(s);
      }),
    );
  });

  it('rejects a bad shard count or shard, and derives the round from the clock', () => {
    expect(() => shardOf('a', 1, 0)).toThrow(/shards must be a positive integer/);
    expect(() => nodesInShard(['a'], 1, 3, 3)).toThrow(/shard must be an integer in \[0, 3\)/);
    expect(roundAt(125_000, 60_000)).toBe(2);
    expect(() => roundAt(1, 0)).toThrow(/intervalMs must be positive/);
  });
});
