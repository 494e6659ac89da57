// Sharding of a balancing round: with S shards the schedule starts S runs, and each run takes the
// nodes that a per-round salted hash puts in its shard. The salt changes every round, so two nodes
// that fall in different shards this round share one in a later round: every pair can meet.

/** FNV-1a over the UTF-16 code units of `text`, finished with murmur3's avalanche so close inputs spread. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkShards(shards: number): void {
  if (!Number.isInteger(shards) || shards < 1) {
    throw new RangeError(`shards must be a positive integer, got ${shards}`);
  }
}

/** The shard (0 ≤ shard < shards) that node `nodeId` belongs to in `round`. */
export function shardOf(nodeId: string, round: number, shards: number): number {
  checkShards(shards);
  if (!Number.isInteger(round)) throw new RangeError(`round must be an integer, got ${round}`);
  if (shards === 1) return 0;
  return hash32(`${round}\u0000${nodeId}`) % shards;
}

/** Checks that `shard` names one of `shards` shards; throws a RangeError saying why not. */
export function checkShard(shard: number, shards: number): void {
  checkShards(shards);
  if (!Number.isInteger(shard) || shard < 0 || shard >= shards) {
    throw new RangeError(`shard must be an integer in [0, ${shards}), got ${shard}`);
  }
}

/** The ids among `nodeIds` that `round`'s hash puts in `shard`, in their given order. */
export function nodesInShard(
  nodeIds: readonly string[],
  round: number,
  shard: number,
  shards: number,
): string[] {
  checkShard(shard, shards);
  return nodeIds.filter((id) => shardOf(id, round, shards) === shard);
}

/** The round a clock time falls in when rounds start every `intervalMs` (rounds count from the epoch). */
export function roundAt(now: number, intervalMs: number): number {
  if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
  return Math.floor(now / intervalMs);
}
