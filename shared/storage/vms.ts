// VM items and their named transitions. Every state change is one conditional write that
// names the fence it expects; a failed guard is ConditionFailed(transition), never a silent no-op.

import type { AfterFailure } from '../domain/restart.ts';
import type { LoadFactors } from '../domain/types.ts';
import type { ImageRef, MigrationOrder, RestartPolicy, VmState } from '../domain/vm-state.ts';
import type { Clients } from './clients.ts';
import { InvalidInput, NotFound } from './errors.ts';
import type { HeldObject } from './image-store.ts';
import { kindIndexKey, ownerIndexKey, vmKey } from './keys.ts';
import { TABLE } from './schema.ts';
import {
  deleteItem,
  getItem,
  type Page,
  putItem,
  queryAll,
  queryPage,
  updateItem,
  updateItemOnly,
} from './table.ts';

/** What a VM runs: a built-in guest or a registered module, with its parameters. */
export interface GuestSpec {
  /** `cpu`, `memory`, `io`, `trace`, `idle`, or `module:<name>` for a registered module. */
  kind: string;
  params?: Record<string, number>;
  /** For `trace`: the utilisation series (percent per step). */
  series?: number[];
}

export interface VmRecord {
  id: string;
  owner: string;
  state: VmState;
  /** Ownership epoch: bumped whenever the VM changes hands or restarts, so old holders' writes fail. */
  fence: number;
  guest: GuestSpec;
  memPages: number;
  /** Programmed target load (Fig. 5, Fig. 7): selection and the kernel's sharing weight; not a limit. */
  targetLoad?: number;
  /** Cores the VM may use at most, enforced by its node's kernel. */
  cpuLimit?: number;
  pinned: boolean;
  group?: string;
  image?: ImageRef;
  /**
   * A migration's final delta, carried in the item instead of S3 (written by `markImageReady`, at
   * most INLINE_IMAGE_BYTES): the only copy until a node publishes it to its key and drops it here
   * (`dropInlineImage`). Anyone loading the VM's images publishes it first.
   */
  inlineImage?: HeldObject;
  migration?: MigrationOrder;
  cooldownUntil?: number;
  lastMovedAt?: number;
  moves: number;
  /** The agent incarnation that marked it RUNNING under this fence. */
  startedBy?: string;
  /** Last measured factors and digest, as of the last checkpoint. */
  factors?: LoadFactors;
  digest?: string;
  /** What a failure of the guest itself does; absent means `never`. */
  restartPolicy?: RestartPolicy;
  /** Why the guest last failed (kept while it backs off, and when FAILED). */
  reason?: string;
  failedAt?: number;
  /** Consecutive failures of the guest since it was created or last restarted by hand. */
  failures?: number;
  /** Backing off after a failure: not started again before this (epoch ms). */
  retryAt?: number;
  /** The last time a restore fell back from a broken image to an older one, and what it cost. */
  recovery?: ImageRecovery;
  createdAt: number;
  updatedAt: number;
}

/** A restore that skipped broken images: which one was newest, which one ran, guest work lost. */
export interface ImageRecovery {
  broken: string;
  why: string;
  restored: string;
  /** Seconds of guest time (vTOD) between the broken image and the restored one. */
  lostSeconds: number;
  at: number;
}

export interface NewVm {
  id: string;
  owner: string;
  guest: GuestSpec;
  memPages: number;
  targetLoad?: number;
  cpuLimit?: number;
  pinned?: boolean;
  group?: string;
  /** A new VM's first cooldown: the balancer leaves it where placement put it until then. */
  cooldownUntil?: number;
  restartPolicy?: RestartPolicy;
}

export async function createVm(clients: Clients, vm: NewVm, now: number): Promise<VmRecord> {
  const record: VmRecord = {
    ...vm,
    pinned: vm.pinned ?? false,
    state: 'PENDING',
    fence: 1,
    moves: 0,
    createdAt: now,
    updatedAt: now,
  };
  await putItem(clients, 'createVm', {
    Item: { ...vmKey(vm.id), ...ownerIndexKey(vm.owner, vm.id), ...kindIndexKey('VM', vm.id), ...record },
    ConditionExpression: 'attribute_not_exists(pk)',
  });
  return record;
}

export async function getVm(clients: Clients, id: string): Promise<VmRecord> {
  const vm = await findVm(clients, id);
  if (!vm) throw new NotFound('vm', id);
  return vm;
}

export function findVm(clients: Clients, id: string): Promise<VmRecord | undefined> {
  return getItem<VmRecord>(clients, vmKey(id));
}

/** The VMs a node must act on: those it owns, and those whose image is ready for it to take. */
export function listVmsForNode(clients: Clients, node: string): Promise<VmRecord[]> {
  const index = TABLE.indexes.byOwner;
  return queryAll<VmRecord>(clients, {
    IndexName: index.name,
    // The partition also files inbound migration hints (shared/storage/switchover.ts): VMs only.
    KeyConditionExpression: '#p = :p AND begins_with(#s, :vm)',
    ExpressionAttributeNames: { '#p': index.partitionKey, '#s': index.sortKey },
    ExpressionAttributeValues: { ':p': ownerIndexKey(node, '').gsi1pk, ':vm': 'VM#' },
  });
}

/** One page of all VMs in id order, optionally filtered by owner and state. */
export function listVmsPage(
  clients: Clients,
  options: { limit: number; cursor?: string; owner?: string; state?: VmState },
): Promise<Page<VmRecord>> {
  const index = TABLE.indexes.byKind;
  const filters: string[] = [];
  const names: Record<string, string> = { '#k': index.partitionKey };
  const values: Record<string, unknown> = { ':k': 'VM' };
  if (options.owner) {
    filters.push('#owner = :owner');
    names['#owner'] = 'owner';
    values[':owner'] = options.owner;
  }
  if (options.state) {
    filters.push('#state = :state');
    names['#state'] = 'state';
    values[':state'] = options.state;
  }
  return queryPage<VmRecord>(
    clients,
    {
      IndexName: index.name,
      KeyConditionExpression: '#k = :k',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      Limit: options.limit,
      ...(filters.length ? { FilterExpression: filters.join(' AND ') } : {}),
    },
    options.cursor,
  );
}

export function listAllVms(clients: Clients): Promise<VmRecord[]> {
  const index = TABLE.indexes.byKind;
  return queryAll<VmRecord>(clients, {
    IndexName: index.name,
    KeyConditionExpression: '#k = :k',
    ExpressionAttributeNames: { '#k': index.partitionKey },
    ExpressionAttributeValues: { ':k': 'VM' },
  });
}

// ---- transitions -------------------------------------------------------------------------

/**
 * PENDING → RUNNING: the owner started the guest under `fence`. `incarnation` records which agent
 * process did, so a repeated step can tell its own write from another process's.
 */
export function markRunning(
  clients: Clients,
  {
    id,
    node,
    fence,
    now,
    incarnation,
  }: { id: string; node: string; fence: number; now: number; incarnation?: string | undefined },
) {
  return updateItem<VmRecord>(clients, 'markRunning', {
    Key: vmKey(id),
    UpdateExpression: incarnation
      ? 'SET #state = :running, updatedAt = :now, startedBy = :inc'
      : 'SET #state = :running, updatedAt = :now REMOVE startedBy',
    ConditionExpression:
      '#owner = :n AND fence = :f AND #state = :pending AND attribute_not_exists(migration)',
    ExpressionAttributeNames: { '#state': 'state', '#owner': 'owner' },
    ExpressionAttributeValues: {
      ':running': 'RUNNING',
      ':pending': 'PENDING',
      ':n': node,
      ':f': fence,
      ':now': now,
      ...(incarnation ? { ':inc': incarnation } : {}),
    },
  });
}

/** Records a new image (checkpoint) of a VM the node still holds under `fence`. */
export function recordCheckpoint(
  clients: Clients,
  {
    id,
    node,
    fence,
    image,
    factors,
    now,
  }: {
    id: string;
    node: string;
    fence: number;
    image: ImageRef;
    factors?: LoadFactors | undefined;
    now: number;
  },
) {
  return updateItem<VmRecord>(clients, 'recordCheckpoint', {
    Key: vmKey(id),
    UpdateExpression: `SET image = :img, digest = :d, updatedAt = :now${factors ? ', factors = :fa' : ''}`,
    // Never once the image is handed over (IMAGE_READY): that image is final, a zombie source must not move it.
    ConditionExpression:
      '#owner = :n AND fence = :f AND #state = :running AND (attribute_not_exists(image) OR image.seq < :seq) ' +
      'AND (attribute_not_exists(migration) OR migration.phase = :ordered)',
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    ExpressionAttributeValues: {
      ':running': 'RUNNING',
      ':ordered': 'ORDERED',
      ':img': image,
      ':d': image.digest,
      ':n': node,
      ':f': fence,
      ':seq': image.seq,
      ':now': now,
      ...(factors ? { ':fa': factors } : {}),
    },
  });
}

/** Protocol step 1: order a RUNNING VM from its owner to another node, conditional on the fence. */
export async function orderMigration(
  clients: Clients,
  id: string,
  fence: number,
  order: MigrationOrder,
): Promise<VmRecord> {
  const out = await updateItem<VmRecord>(clients, 'orderMigration', {
    Key: vmKey(id),
    UpdateExpression: 'SET migration = :m, updatedAt = :now',
    ConditionExpression:
      '#owner = :from AND fence = :f AND #state = :running AND attribute_not_exists(migration) AND pinned = :false',
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    ExpressionAttributeValues: {
      ':m': order,
      ':from': order.from,
      ':f': fence,
      ':running': 'RUNNING',
      ':false': false,
      ':now': order.orderedAt,
    },
  });
  return out;
}

/**
 * Protocol step 2: the source stopped the guest and wrote the final delta; file the VM under the
 * target. `deadline`, when given, replaces the order's deadline: a fresh window for the target.
 */
export function markImageReady(
  clients: Clients,
  {
    id,
    order,
    fence,
    image,
    stoppedAt,
    bytes,
    now,
    deadline,
    inline,
  }: {
    id: string;
    order: Pick<MigrationOrder, 'id' | 'to'>;
    fence: number;
    image: ImageRef;
    stoppedAt: number;
    bytes: { precopy: number; final: number };
    now: number;
    deadline?: number | undefined;
    /** The final image's object itself, not on S3 (see VmRecord.inlineImage); never replaces another. */
    inline?: HeldObject | undefined;
  },
) {
  if (inline && inline.key !== image.manifest)
    throw new InvalidInput(`the inline object ${inline.key} is not the image ${image.manifest}`);
  // Not read back: with the final delta inline, the item is tens of KiB the caller does not need.
  return updateItemOnly(clients, 'markImageReady', {
    Key: vmKey(id),
    UpdateExpression:
      'SET migration.phase = :ready, migration.stoppedAt = :stopped, migration.bytes = :bytes, ' +
      `image = :img, digest = :d, gsi1pk = :holder, updatedAt = :now${deadline === undefined ? '' : ', migration.deadline = :dl'}` +
      (inline ? ', inlineImage = :inl' : ''),
    ConditionExpression:
      'fence = :f AND migration.id = :m AND migration.phase = :ordered' +
      (inline ? ' AND attribute_not_exists(inlineImage)' : ''),
    ExpressionAttributeValues: {
      ':ready': 'IMAGE_READY',
      ':ordered': 'ORDERED',
      ':stopped': stoppedAt,
      ':bytes': bytes,
      ':img': image,
      ':d': image.digest,
      ':f': fence,
      ':m': order.id,
      ':holder': ownerIndexKey(order.to, id).gsi1pk,
      ':now': now,
      ...(deadline === undefined ? {} : { ':dl': deadline }),
      ...(inline ? { ':inl': { key: inline.key, body: inline.body } } : {}),
    },
  });
}

/** Where a VM goes under a new fence, from the fence the caller read. */
interface FencedMove {
  id: string;
  fence: number;
  node: string;
  now: number;
}

/** A move that finishes or settles migration `migrationId`. */
type MigrationMove = FencedMove & { migrationId: string };

/**
 * The write every move of a VM to `node` under a new fence shares: owner, fence, state and the
 * owner index change together. `set`, `remove` and `condition` are the transition's own.
 */
function moveUnderNewFence(clients: Clients, transition: string, move: MoveWrite) {
  return updateItem<VmRecord>(clients, transition, moveInput(move));
}

/** A move's own parts (see moveUnderNewFence). */
interface MoveWrite {
  id: string;
  node: string;
  now: number;
  state: 'PENDING' | 'RUNNING';
  condition: string;
  set?: string;
  remove?: string;
  names?: Record<string, string>;
  values: Record<string, unknown>;
}

/** The UpdateItem input of a move (see moveUnderNewFence). */
function moveInput(move: MoveWrite) {
  const { id, node, now } = move;
  return {
    Key: vmKey(id),
    UpdateExpression:
      `SET #owner = :n, fence = fence + :one, #state = :to, gsi1pk = :holder, updatedAt = :now${move.set ? `, ${move.set}` : ''}` +
      (move.remove ? ` REMOVE ${move.remove}` : ''),
    ConditionExpression: move.condition,
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state', ...move.names },
    ExpressionAttributeValues: {
      ':n': node,
      ':to': move.state,
      ':one': 1,
      ':now': now,
      ':holder': ownerIndexKey(node, id).gsi1pk,
      ...move.values,
    },
  };
}

/** Protocol step 3: the target loaded the image and takes the VM; the fence moves on, then it runs. */
export function takeOwnership(
  clients: Clients,
  { id, migrationId, fence, node, now, cooldownUntil }: MigrationMove & { cooldownUntil: number },
) {
  // Not read back: the item may still carry the final delta (until the target publishes it).
  return updateItemOnly(
    clients,
    'takeOwnership',
    moveInput({
      id,
      node,
      now,
      state: 'RUNNING',
      set: 'lastMovedAt = :now, cooldownUntil = :cool, moves = moves + :one',
      remove: 'migration',
      condition: 'fence = :f AND migration.id = :m AND migration.phase = :ready AND migration.#to = :n',
      names: { '#to': 'to' },
      values: { ':f': fence, ':m': migrationId, ':ready': 'IMAGE_READY', ':cool': cooldownUntil },
    }),
  );
}

/** Drops an order that has not reached IMAGE_READY (declined, or past its deadline); the source keeps running. */
export function abortMigration(clients: Clients, id: string, migrationId: string, now: number) {
  return updateItem<VmRecord>(clients, 'abortMigration', {
    Key: vmKey(id),
    UpdateExpression: 'SET updatedAt = :now REMOVE migration',
    ConditionExpression: 'migration.id = :m AND migration.phase = :ordered',
    ExpressionAttributeValues: { ':m': migrationId, ':ordered': 'ORDERED', ':now': now },
  });
}

/**
 * Settles an IMAGE_READY order nobody finished: the image is final and the guest stopped, so the
 * VM restarts from it on `node` (target or source) under a new fence.
 */
export function settleMigration(clients: Clients, { id, migrationId, fence, node, now }: MigrationMove) {
  return moveUnderNewFence(clients, 'settleMigration', {
    id,
    node,
    now,
    state: 'PENDING',
    remove: 'migration',
    condition: 'fence = :f AND migration.id = :m AND migration.phase = :ready',
    values: { ':f': fence, ':m': migrationId, ':ready': 'IMAGE_READY' },
  });
}

/**
 * The reaper's move: a VM of a dead node restarts from its last image on `node` under a new fence.
 * Conditional on the owner, fence and state the caller read: PENDING → RUNNING keeps the fence, so
 * a stale read of PENDING must not restart a VM its owner has started meanwhile.
 */
export function restartElsewhere(
  clients: Clients,
  {
    id,
    deadNode,
    fence,
    node,
    now,
    seen,
  }: { id: string; deadNode: string; fence: number; node: string; now: number; seen: 'PENDING' | 'RUNNING' },
) {
  return moveUnderNewFence(clients, 'restartElsewhere', {
    id,
    node,
    now,
    state: 'PENDING',
    remove: 'migration, startedBy',
    condition: '#owner = :dead AND fence = :f AND #state = :seen',
    values: { ':dead': deadNode, ':f': fence, ':seen': seen },
  });
}

/**
 * A node restarts a VM it owns but no longer holds (it restarted or fenced itself), under a new fence.
 * Never one it has handed over: the source stops its guest right after IMAGE_READY, which moves no
 * fence, so a read of the item from before that write (it raced the hand-over) would otherwise
 * restart the VM from its last image and drop the order the target is taking.
 */
export function restartOwn(
  clients: Clients,
  {
    id,
    node,
    fence,
    now,
    seen,
  }: { id: string; node: string; fence: number; now: number; seen: 'PENDING' | 'RUNNING' },
) {
  return moveUnderNewFence(clients, 'restartOwn', {
    id,
    node,
    now,
    state: 'PENDING',
    remove: 'migration, startedBy',
    condition:
      '#owner = :n AND fence = :f AND #state = :seen AND (attribute_not_exists(migration) OR migration.phase <> :ready)',
    values: { ':f': fence, ':seen': seen, ':ready': 'IMAGE_READY' },
  });
}

/** Asks the owner to suspend (RUNNING, no migration in flight) or delete a VM; conditional on the fence. */
export function requestState(
  clients: Clients,
  { id, fence, want, now }: { id: string; fence: number; want: 'SUSPENDING' | 'DELETING'; now: number },
) {
  return updateItem<VmRecord>(clients, want === 'SUSPENDING' ? 'requestSuspend' : 'requestDelete', {
    Key: vmKey(id),
    UpdateExpression: 'SET #state = :want, updatedAt = :now',
    ConditionExpression:
      want === 'SUSPENDING'
        ? 'fence = :f AND #state = :running AND attribute_not_exists(migration)'
        : 'fence = :f AND #state IN (:running, :pending) AND attribute_not_exists(migration)',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: {
      ':want': want,
      ':f': fence,
      ':running': 'RUNNING',
      ':now': now,
      ...(want === 'DELETING' ? { ':pending': 'PENDING' } : {}),
    },
  });
}

/**
 * SUSPENDING → SUSPENDED: the owner wrote the full image and stopped the guest; owner kept.
 * Without `image` the last recorded image is the suspended state (the owner died or lost the guest;
 * a VM never imaged resumes fresh).
 */
export function markSuspended(
  clients: Clients,
  {
    id,
    node,
    fence,
    image,
    now,
  }: { id: string; node: string; fence: number; image?: ImageRef | undefined; now: number },
) {
  return updateItem<VmRecord>(clients, 'markSuspended', {
    Key: vmKey(id),
    UpdateExpression: image
      ? 'SET #state = :suspended, image = :img, digest = :d, updatedAt = :now'
      : 'SET #state = :suspended, updatedAt = :now',
    ConditionExpression: '#owner = :n AND fence = :f AND #state = :suspending',
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    ExpressionAttributeValues: {
      ':suspended': 'SUSPENDED',
      ':suspending': 'SUSPENDING',
      ...(image ? { ':img': image, ':d': image.digest } : {}),
      ':n': node,
      ':f': fence,
      ':now': now,
    },
  });
}

/** SUSPENDED → PENDING on `node` under a new fence; the node loads the image and runs it. */
export function resumeVm(clients: Clients, { id, fence, node, now }: FencedMove) {
  return moveUnderNewFence(clients, 'resumeVm', {
    id,
    node,
    now,
    state: 'PENDING',
    condition: 'fence = :f AND #state = :suspended',
    values: { ':f': fence, ':suspended': 'SUSPENDED' },
  });
}

/** Removes the VM item, conditional on the fence (and on the state the caller saw). */
export async function deleteVmItem(
  clients: Clients,
  id: string,
  fence: number,
  state: VmState,
): Promise<void> {
  await deleteItem(clients, 'deleteVm', vmKey(id), {
    ConditionExpression: 'fence = :f AND #state = :s',
    ExpressionAttributeNames: { '#state': 'state' },
    ExpressionAttributeValues: { ':f': fence, ':s': state },
  });
}

/**
 * The owner's guest failed by itself (see shared/domain/restart.ts for `next`): FAILED with the
 * reason, or PENDING again under a new fence after a backoff. Only the owner under its fence, and
 * only while the VM is starting, running or suspending; an ORDERED migration is dropped with it.
 */
export function failVm(
  clients: Clients,
  {
    id,
    node,
    fence,
    reason,
    next,
    now,
  }: { id: string; node: string; fence: number; reason: string; next: AfterFailure; now: number },
) {
  const retry = next.state === 'PENDING';
  return updateItem<VmRecord>(clients, retry ? 'backOffVm' : 'failVm', {
    Key: vmKey(id),
    UpdateExpression: retry
      ? 'SET #state = :pending, fence = fence + :one, reason = :r, failedAt = :now, failures = :n, retryAt = :at, updatedAt = :now REMOVE migration'
      : 'SET #state = :failed, reason = :r, failedAt = :now, failures = :n, updatedAt = :now REMOVE migration, retryAt',
    ConditionExpression:
      '#owner = :o AND fence = :f AND #state IN (:pending, :running, :suspending) ' +
      'AND (attribute_not_exists(migration) OR migration.phase = :ordered)',
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    ExpressionAttributeValues: {
      ':o': node,
      ':f': fence,
      ':pending': 'PENDING',
      ':running': 'RUNNING',
      ':suspending': 'SUSPENDING',
      ':ordered': 'ORDERED',
      ':r': reason,
      ':n': next.failures,
      ':now': now,
      ...(retry ? { ':one': 1, ':at': next.retryAt } : { ':failed': 'FAILED' }),
    },
  });
}

/** FAILED → PENDING on `node` under a new fence: a fresh try, failures forgotten (the reason too). */
export function restartVm(clients: Clients, { id, fence, node, now }: FencedMove) {
  return moveUnderNewFence(clients, 'restartVm', {
    id,
    node,
    now,
    state: 'PENDING',
    set: 'failures = :zero',
    remove: 'reason, failedAt, retryAt',
    condition: 'fence = :f AND #state = :failed',
    values: { ':f': fence, ':zero': 0, ':failed': 'FAILED' },
  });
}

/**
 * The owner started a PENDING VM from an older image than the table's newest, which was broken:
 * the older image becomes the VM's image (so checkpoints continue from it) and the loss is recorded.
 */
export function recordImageRecovery(
  clients: Clients,
  {
    id,
    node,
    fence,
    image,
    recovery,
  }: { id: string; node: string; fence: number; image: ImageRef; recovery: ImageRecovery },
) {
  return updateItem<VmRecord>(clients, 'recordImageRecovery', {
    Key: vmKey(id),
    UpdateExpression: 'SET image = :img, digest = :d, recovery = :rec, updatedAt = :now',
    ConditionExpression: '#owner = :n AND fence = :f AND #state = :pending AND image.manifest = :broken',
    ExpressionAttributeNames: { '#owner': 'owner', '#state': 'state' },
    ExpressionAttributeValues: {
      ':img': image,
      ':d': image.digest,
      ':rec': recovery,
      ':n': node,
      ':f': fence,
      ':pending': 'PENDING',
      ':broken': recovery.broken,
      ':now': recovery.at,
    },
  });
}
