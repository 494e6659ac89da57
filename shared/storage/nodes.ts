// Node items: registration, the lease (heartbeat), load reports, balancer claims and admin changes.
// Each change is one conditional write that names what it protects.
import { type DriverName, driversOfLabels } from '../domain/guests.ts';
import type { PlacementNode } from '../domain/placement.ts';
import { plainMaker } from '../domain/plain.ts';
import { bucketOf, groupOf, shardReads } from '../domain/shards.ts';
import type { LoadFactors, NodeInfo, Weights } from '../domain/types.ts';
import { effectiveWeights } from '../domain/weights.ts';
import { eachLimited } from '../runtime/pool.ts';
import type { Clients } from './clients.ts';
import { ConditionFailed, NotFound } from './errors.ts';
import { bucketIndexKey, bucketPrefix, kindIndexKey, nodeKey } from './keys.ts';
import { TABLE } from './schema.ts';
import { getItem, listKind, queryAll, updateItem } from './table.ts';

/**
 * One VM's line in a load report: the Fig. 5 schedule entry plus what the balancer needs to
 * decide without reading the VM item (so a run reads one item per node).
 */
export interface ReportedVm {
  factors: LoadFactors;
  /** The VM's load under this node's weights. */
  load: number;
  targetLoad?: number;
  memPages: number;
  pinned: boolean;
  group?: string;
  cooldownUntil?: number;
  /** The driver the VM runs under, when not the default wasm kernel. */
  driver?: DriverName;
  /** The fence the agent runs the VM under; orders are conditional on it. */
  fence: number;
  /** A migration or state change is in flight. */
  busy: boolean;
  digest: string;
}

/** What an agent posts every period: per-VM entries and the node's total under its own weights. */
export interface LoadReport {
  at: number;
  total: number;
  vms: Record<string, ReportedVm>;
  /** Demand the node could not serve in the period, in load units (the patent's "runs slower"). */
  steal: number;
  /** Capacity in use, as a fraction. */
  utilisation: number;
}

export interface NodeRecord extends NodeInfo {
  labels: Record<string, string>;
  /** Which agent process holds the node; a restarted agent gets a new incarnation. */
  incarnation: string;
  /** The holding process's pid and host, for the message that refuses a second agent. */
  holder?: LeaseHolder;
  /** Epoch ms; past it the node is dead unless it renews. */
  leaseUntil: number;
  /** A balancer run's booking of the node for one exchange. */
  claim?: { run: string; until: number };
  report?: LoadReport;
  /** Multipliers on the weights from performance-monitor hints. */
  hints?: Partial<Weights>;
  registeredAt: number;
  updatedAt: number;
}

export interface NodeSpec {
  id: string;
  capacity: number;
  weights: Weights;
  memCapacityPages: number;
  labels?: Record<string, string>;
}

/** Which process holds a node's lease, as the agent recorded it at registration. */
export interface LeaseHolder {
  pid: number;
  host: string;
}

/** A node id whose live lease another agent process (incarnation) holds: this one may not take it. */
export class NodeHeld extends Error {
  override readonly name = 'NodeHeld';
  constructor(
    readonly node: Pick<NodeRecord, 'id' | 'incarnation' | 'leaseUntil' | 'holder'>,
    now: number,
  ) {
    const holder = node.holder ? `pid ${node.holder.pid} on ${node.holder.host}` : 'an unrecorded process';
    super(
      `node ${node.id} is held by a live agent: incarnation ${node.incarnation} (${holder}); ` +
        `its lease ends at ${new Date(node.leaseUntil).toISOString()} (in ${((node.leaseUntil - now) / 1000).toFixed(1)} s). ` +
        'Stop that agent, or start this one after the lease lapses.',
    );
  }
}

/** The byBucket index values of node `id`, as update expression values. */
function bucketValues(id: string) {
  const bucket = bucketOf(id);
  const keys = bucketIndexKey(groupOf(bucket), bucket, id);
  return { ':bgroup': keys.gsi3pk, ':bsort': keys.gsi3sk };
}

/**
 * Registers (or re-registers) a node under a new incarnation; admin state (draining, override) is
 * kept. Conditional: only when the node is new, its lease has lapsed, or it is held by `replaces`
 * (this process's own previous incarnation). Otherwise NodeHeld names the live holder.
 */
export async function registerNode(
  clients: Clients,
  options: {
    spec: NodeSpec;
    incarnation: string;
    now: number;
    leaseMs: number;
    replaces?: string | undefined;
    holder?: LeaseHolder | undefined;
  },
): Promise<NodeRecord> {
  const { spec, incarnation, now, leaseMs } = options;
  try {
    return await updateItem<NodeRecord>(clients, 'registerNode', {
      Key: nodeKey(spec.id),
      UpdateExpression:
        'SET id = :id, #capacity = :c, weights = :w, memCapacityPages = :m, labels = :l, incarnation = :i, ' +
        'leaseUntil = :lease, updatedAt = :now, registeredAt = if_not_exists(registeredAt, :now), ' +
        'draining = if_not_exists(draining, :false), #kind = :kind, gsi2sk = :id, gsi3pk = :bgroup, gsi3sk = :bsort' +
        (options.holder ? ', holder = :h' : '') +
        (options.holder ? '' : ' REMOVE holder'),
      ConditionExpression:
        'attribute_not_exists(pk) OR attribute_not_exists(incarnation) OR incarnation IN (:i, :mine) OR leaseUntil < :now',
      ExpressionAttributeNames: { '#kind': 'kind', '#capacity': 'capacity' },
      ExpressionAttributeValues: {
        ':id': spec.id,
        ':c': spec.capacity,
        ':w': spec.weights,
        ':m': spec.memCapacityPages,
        ':l': spec.labels ?? {},
        ':i': incarnation,
        ':mine': options.replaces ?? incarnation,
        ':lease': now + leaseMs,
        ':now': now,
        ':false': false,
        ':kind': kindIndexKey('NODE', spec.id).kind,
        ...bucketValues(spec.id),
        ...(options.holder ? { ':h': options.holder } : {}),
      },
    });
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    const held = await getItem<NodeRecord>(clients, nodeKey(spec.id));
    if (held) throw new NodeHeld(held, now);
    throw error;
  }
}

/** Extends the lease; fails (ConditionFailed) if another incarnation took the node or the lease lapsed. */
export function renewLease(
  clients: Clients,
  {
    id,
    incarnation,
    now,
    leaseMs,
    report,
  }: { id: string; incarnation: string; now: number; leaseMs: number; report?: LoadReport | undefined },
): Promise<NodeRecord> {
  return updateItem<NodeRecord>(clients, 'renewLease', {
    Key: nodeKey(id),
    // The bucket keys ride along so a node registered before the byBucket index files itself on its next beat.
    UpdateExpression: report
      ? 'SET leaseUntil = :lease, updatedAt = :now, report = :r, gsi3pk = :bgroup, gsi3sk = :bsort'
      : 'SET leaseUntil = :lease, updatedAt = :now, gsi3pk = :bgroup, gsi3sk = :bsort',
    ConditionExpression: 'incarnation = :i AND leaseUntil >= :now',
    ExpressionAttributeValues: {
      ':i': incarnation,
      ...bucketValues(id),
      ':now': now,
      ':lease': now + leaseMs,
      ...(report ? { ':r': report } : {}),
    },
  });
}

/** Gives the lease up at shutdown so the reaper need not wait for it to lapse. */
export async function releaseLease(
  clients: Clients,
  id: string,
  incarnation: string,
  now: number,
): Promise<void> {
  await updateItem(clients, 'releaseLease', {
    Key: nodeKey(id),
    UpdateExpression: 'SET leaseUntil = :now, updatedAt = :now',
    ConditionExpression: 'incarnation = :i',
    ExpressionAttributeValues: { ':i': incarnation, ':now': now },
  });
}

/** Books a node for one exchange of run `run` until `until`; fails if another live claim holds it. */
export async function claimNode(
  clients: Clients,
  { id, run, now, until }: { id: string; run: string; now: number; until: number },
): Promise<void> {
  await updateItem(clients, 'claimNode', {
    Key: nodeKey(id),
    UpdateExpression: 'SET claim = :claim',
    ConditionExpression:
      'attribute_exists(pk) AND (attribute_not_exists(claim) OR claim.#until < :now OR claim.run = :run)',
    ExpressionAttributeNames: { '#until': 'until' },
    ExpressionAttributeValues: { ':claim': { run, until }, ':now': now, ':run': run },
  });
}

/** Drops a run's claim early (a lost race on the partner, or nothing to do). */
export async function releaseClaim(clients: Clients, id: string, run: string): Promise<void> {
  await updateItem(clients, 'releaseClaim', {
    Key: nodeKey(id),
    UpdateExpression: 'REMOVE claim',
    ConditionExpression: 'claim.run = :run',
    ExpressionAttributeValues: { ':run': run },
  });
}

export async function getNode(clients: Clients, id: string): Promise<NodeRecord> {
  const node = await getItem<NodeRecord>(clients, nodeKey(id));
  if (!node) throw new NotFound('node', id);
  return node;
}

export function listNodes(clients: Clients): Promise<NodeRecord[]> {
  return listKind<NodeRecord>(clients, 'NODE');
}

/** Bucket queries in flight at once when a run reads its shard. */
const BUCKET_READS = 16;

/** The nodes filed under the given groups, or single buckets of them (byBucket index), in read order. */
export async function listNodesInBuckets(
  clients: Clients,
  reads: readonly { group: number; bucket?: number }[],
): Promise<NodeRecord[]> {
  const index = TABLE.indexes.byBucket;
  const found: NodeRecord[][] = [];
  await eachLimited([...reads.entries()], BUCKET_READS, async ([k, read]) => {
    const partition = bucketIndexKey(read.group, 0, '').gsi3pk;
    found[k] = await queryAll<NodeRecord>(clients, {
      IndexName: index.name,
      KeyConditionExpression: read.bucket === undefined ? '#g = :g' : '#g = :g AND begins_with(#b, :b)',
      ExpressionAttributeNames: {
        '#g': index.partitionKey,
        ...(read.bucket === undefined ? {} : { '#b': index.sortKey }),
      },
      ExpressionAttributeValues: {
        ':g': partition,
        ...(read.bucket === undefined ? {} : { ':b': bucketPrefix(read.bucket) }),
      },
    });
  });
  return found.flat();
}

/**
 * The node items one shard of a round may pair: those of the buckets the round deals to the shard
 * (about N/shards of them). With one shard, every node through the byKind index; so too on a table
 * without a readable byBucket index (a local store created before it, or one still backfilling it),
 * where the caller's shard filter then does the work.
 */
export async function listShardNodes(
  clients: Clients,
  shard: { round: number; shard: number; shards: number },
): Promise<NodeRecord[]> {
  if (shard.shards === 1) return listNodes(clients);
  try {
    return await listNodesInBuckets(clients, shardReads(shard.round, shard.shard, shard.shards));
  } catch (error) {
    if ((error as Error).name !== 'ValidationException') throw error;
    return listNodes(clients);
  }
}

/** Administrator changes to a node: drain/undrain, weights, load override, hints. */
export interface NodePatch {
  draining?: boolean;
  weights?: Weights;
  /** A number overrides the measured load; null clears the override. */
  loadOverride?: number | null;
  hints?: Partial<Weights>;
}

export async function patchNode(
  clients: Clients,
  id: string,
  patch: NodePatch,
  now: number,
): Promise<NodeRecord> {
  const sets: string[] = ['updatedAt = :now'];
  const removes: string[] = [];
  const values: Record<string, unknown> = { ':now': now };
  if (patch.draining !== undefined) {
    sets.push('draining = :d');
    values[':d'] = patch.draining;
  }
  if (patch.weights) {
    sets.push('weights = :w');
    values[':w'] = patch.weights;
  }
  if (patch.hints) {
    sets.push('hints = :h');
    values[':h'] = patch.hints;
  }
  if (patch.loadOverride === null) removes.push('loadOverride');
  else if (patch.loadOverride !== undefined) {
    sets.push('loadOverride = :o');
    values[':o'] = patch.loadOverride;
  }
  try {
    return await updateItem<NodeRecord>(clients, 'patchNode', {
      Key: nodeKey(id),
      UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: values,
    });
  } catch (error) {
    if (error instanceof ConditionFailed) throw new NotFound('node', id);
    throw error;
  }
}

/** A node item as the balancer sees it: effective weights, capacity, memory, drain, drivers, override. */
export function nodeInfoOf(node: NodeRecord): NodeInfo {
  return new NodeInfoOf(node);
}

/**
 * A node as the balancer sees it, made by `new` (see `plainMaker`): each run keeps one per node to
 * its end, and V8 would make a literal's straight in the old generation (1 MB a run at 10,000 nodes).
 */
const NodeInfoOf = plainMaker(function (this: NodeInfo, node: NodeRecord) {
  this.id = node.id;
  this.weights = effectiveWeights(node.weights, node.hints);
  this.capacity = node.capacity;
  this.memCapacityPages = node.memCapacityPages;
  this.draining = node.draining ?? false;
  this.drivers = driversOfLabels(node.labels);
  if (node.loadOverride !== undefined) this.loadOverride = node.loadOverride;
});

/** A node item as placement sees it: the balancer's view, its lease, and the VMs of its last report. */
export function placementNode(node: NodeRecord): PlacementNode {
  return {
    ...nodeInfoOf(node),
    leaseUntil: node.leaseUntil,
    vms: Object.values(node.report?.vms ?? {}).map((vm) => ({
      factors: vm.factors,
      memPages: vm.memPages,
      ...(vm.group !== undefined ? { group: vm.group } : {}),
      ...(vm.driver !== undefined ? { driver: vm.driver } : {}),
    })),
  };
}
