// Sharding of a balancing round: with S shards the schedule starts S runs. Each node has a stable
// bucket (a hash of its id, one of NODE_BUCKETS), stored on its item so a run can read its shard's
// buckets alone; each round deals the buckets to the shards in a per-round salted order. The salt
// changes every round, so two nodes that fall in different shards this round share one in a later
// round: every pair can meet.

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

/** How many buckets the nodes are spread over; the config's shard count never exceeds it. */
export const NODE_BUCKETS = 1024;
/** Buckets come in groups of consecutive buckets, the unit a run reads when shards are few. */
export const BUCKET_GROUPS = 64;
const GROUP_SIZE = NODE_BUCKETS / BUCKET_GROUPS;

/** The stable bucket (0 ≤ bucket < NODE_BUCKETS) of node `nodeId`: the same in every round. */
export function bucketOf(nodeId: string): number {
  return hash32(nodeId) % NODE_BUCKETS;
}

/** The group (0 ≤ group < BUCKET_GROUPS) of a bucket. */
export const groupOf = (bucket: number): number => Math.floor(bucket / GROUP_SIZE);

function checkShards(shards: number): void {
  if (!Number.isInteger(shards) || shards < 1) {
    throw new RangeError(`shards must be a positive integer, got ${shards}`);
  }
  if (shards > NODE_BUCKETS) throw new RangeError(`shards must be at most ${NODE_BUCKETS}, got ${shards}`);
}

/**
 * What a round deals to the shards: whole groups while there are no more shards than groups (so a
 * run reads a few groups), single buckets beyond that.
 */
const dealsGroups = (shards: number) => shards <= BUCKET_GROUPS;

// The last deal, kept: every node of a round looks its bucket up in the same table.
let dealt: { round: number; shards: number; shardOfUnit: Uint16Array } | undefined;

/**
 * Deals the units (groups or buckets) to the shards for `round`: units sorted by a round-salted
 * hash, the k-th going to shard k mod shards, so each shard gets an equal share (±1) and the
 * grouping changes every round.
 */
function deal(round: number, shards: number): Uint16Array {
  if (dealt?.round === round && dealt.shards === shards) return dealt.shardOfUnit;
  const units = dealsGroups(shards) ? BUCKET_GROUPS : NODE_BUCKETS;
  const order = Array.from({ length: units }, (_, unit) => ({ unit, key: hash32(`${round}\u0000#${unit}`) }));
  order.sort((a, b) => a.key - b.key || a.unit - b.unit);
  const shardOfUnit = new Uint16Array(units);
  order.forEach(({ unit }, k) => {
    shardOfUnit[unit] = k % shards;
  });
  dealt = { round, shards, shardOfUnit };
  return shardOfUnit;
}

/** The shard (0 ≤ shard < shards) that bucket `bucket` belongs to in `round`. */
export function shardOfBucket(bucket: number, round: number, shards: number): number {
  checkShards(shards);
  if (!Number.isInteger(round)) throw new RangeError(`round must be an integer, got ${round}`);
  if (shards === 1) return 0;
  return deal(round, shards)[dealsGroups(shards) ? groupOf(bucket) : bucket] as number;
}

/** The buckets `round` deals to `shard`, ascending: a run reads the nodes of these alone. */
export function bucketsInShard(round: number, shard: number, shards: number): number[] {
  checkShard(shard, shards);
  const out: number[] = [];
  for (let bucket = 0; bucket < NODE_BUCKETS; bucket++)
    if (shardOfBucket(bucket, round, shards) === shard) out.push(bucket);
  return out;
}

/**
 * How a run of `shard` reads its nodes: whole groups, or single buckets (each within its group),
 * the fewest index queries that cover its buckets and nothing else.
 */
export function shardReads(
  round: number,
  shard: number,
  shards: number,
): { group: number; bucket?: number }[] {
  const buckets = bucketsInShard(round, shard, shards);
  if (!dealsGroups(shards)) return buckets.map((bucket) => ({ group: groupOf(bucket), bucket }));
  return [...new Set(buckets.map(groupOf))].map((group) => ({ group }));
}

/** The shard (0 ≤ shard < shards) that node `nodeId` belongs to in `round`: its bucket's. */
export function shardOf(nodeId: string, round: number, shards: number): number {
  return shardOfBucket(bucketOf(nodeId), round, shards);
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
