// The migration protocol as a pure decision: given what the table says about a VM, what this
// node's kernel holds of it, and the time, what must this node do next? The agent loop and the
// reaper act on these decisions; every action they take is one conditional write on the fence,
// so acting on a stale view fails instead of doing harm.
import type { ImageRef, MigrationOrder, VmState } from './vm-state.ts';
import { isExpired } from './vm-state.ts';

/** The fields of a VM item the protocol decides on (a VmRecord satisfies it). */
export interface ProtocolVm {
  id: string;
  owner: string;
  state: VmState;
  fence: number;
  image?: ImageRef;
  migration?: MigrationOrder;
  /** A VM backing off after a failure (restart policy `on-failure`) is not started before this. */
  retryAt?: number;
}

/** What this node's kernel holds of a VM, as the agent tracks it. */
export interface Holding {
  /** The fence the copy belongs to: the fence the node owns it under (a target: the fence it will own). */
  fence: number;
  /** Loaded but not scheduled: a source between stop and hand-over, or a target before it owns the VM. */
  paused: boolean;
  /** Set on a target's copy loaded for this migration. */
  migrationId?: string;
  /** The image manifest the copy was restored from, if any. */
  image?: string;
}

export type Action =
  | { kind: 'none' }
  /** Drop the guest from the kernel now: it moved on, or the fence is no longer ours. */
  | { kind: 'stop'; why: string }
  /** Owned and PENDING, not loaded: load it (fresh or from its image), then markRunning. */
  | { kind: 'start' }
  /** Owned and PENDING, already loaded under this fence: markRunning, then schedule it. */
  | { kind: 'markRunning' }
  /** Owned, RUNNING, loaded but paused (an aborted source, or a target whose take landed): schedule it. */
  | { kind: 'resume' }
  /** Owned and RUNNING but not loaded here (the node restarted or fenced itself): restart it under a new fence. */
  | { kind: 'recover' }
  /** Source of an ORDERED migration: pre-copy, stop, final delta, IMAGE_READY, forget. */
  | { kind: 'migrateOut'; order: MigrationOrder }
  /** Target of an ORDERED migration whose pre-copy is announced: restore paused from it, say ready, wait. */
  | { kind: 'prepareIn'; order: MigrationOrder }
  /** Target of an IMAGE_READY migration: load paused, take ownership, run. */
  | { kind: 'migrateIn'; order: MigrationOrder }
  /** An ORDERED migration past its deadline: drop the order (the source keeps or resumes the VM). */
  | { kind: 'abort'; order: MigrationOrder }
  /** An IMAGE_READY migration past its deadline: restart from the final image on the target if live, else elsewhere. */
  | { kind: 'settle'; order: MigrationOrder }
  /** Owned, SUSPENDING, loaded: full image, markSuspended, stop. */
  | { kind: 'suspend' }
  /** Owned, SUSPENDING, not loaded: the last image is the suspended state. */
  | { kind: 'suspendFromImage' }
  /** Owned, DELETING: stop, remove images, remove the item. */
  | { kind: 'delete' }
  /** Owned and loaded, and the guest failed in the kernel: record the failure (FAILED or back off), stop it. */
  | { kind: 'fail'; reason: string }
  /** Owned, RUNNING, loaded, and a periodic image is due. */
  | { kind: 'checkpoint' };

export interface DecisionInput {
  /** The VM item, or undefined when it no longer exists. */
  vm: ProtocolVm | undefined;
  self: string;
  held: Holding | undefined;
  now: number;
  /** True when the periodic checkpoint interval has passed for this VM. */
  checkpointDue?: boolean;
  /** True when another run booked this node first (see `bookedByEarlierRun`): decline this order. */
  busyElsewhere?: boolean;
  /** Why the guest this node holds failed in its kernel, if it did. */
  failure?: string;
}

/** The next thing `self` must do about one VM; `none` when nothing is its business. */
export function nextAction({
  vm,
  self,
  held,
  now,
  checkpointDue,
  busyElsewhere,
  failure,
}: DecisionInput): Action {
  if (!vm) return held ? { kind: 'stop', why: 'the VM no longer exists' } : { kind: 'none' };
  const order = vm.migration;
  const expired = order !== undefined && isExpired(order, now);

  if (order?.phase === 'IMAGE_READY') {
    // The image is final and the source has stopped; only the target (or a settler) may run it next.
    if (order.to === self) {
      if (held && (held.migrationId !== order.id || held.fence !== vm.fence + 1))
        return { kind: 'stop', why: 'a stale copy of a VM this node is about to take' };
      return { kind: 'migrateIn', order };
    }
    if (held) return { kind: 'stop', why: 'the image is handed over' };
    return expired ? { kind: 'settle', order } : { kind: 'none' };
  }

  if (order?.phase === 'ORDERED' && expired) return { kind: 'abort', order };
  // A node is booked by one run at a time: a source declines an order of a run that came after another.
  if (order?.phase === 'ORDERED' && order.from === self && busyElsewhere) return { kind: 'abort', order };

  if (order?.phase === 'ORDERED' && order.to === self && vm.owner !== self) {
    // The target restores from the pre-copy ahead of the final delta, paused, under the fence it will own.
    if (held && (held.migrationId !== order.id || held.fence !== vm.fence + 1))
      return { kind: 'stop', why: 'a copy prepared for another order' };
    // Prepared once: a target that lost its copy after saying ready loads at IMAGE_READY instead.
    if (
      held ||
      order.precopiedAt === undefined ||
      order.targetReadyAt !== undefined ||
      vm.state !== 'RUNNING'
    )
      return { kind: 'none' };
    return { kind: 'prepareIn', order };
  }

  if (held) {
    if (vm.owner !== self) return { kind: 'stop', why: `owned by ${vm.owner} now` };
    if (vm.fence !== held.fence) return { kind: 'stop', why: `fence moved to ${vm.fence}` };
    if (failure !== undefined && vm.state !== 'DELETING' && vm.state !== 'FAILED' && vm.state !== 'SUSPENDED')
      return { kind: 'fail', reason: failure };
    switch (vm.state) {
      case 'FAILED':
        return { kind: 'stop', why: 'failed' };
      case 'DELETING':
        return { kind: 'delete' };
      case 'SUSPENDING':
        return { kind: 'suspend' };
      case 'SUSPENDED':
        return { kind: 'stop', why: 'suspended' };
      case 'PENDING':
        return { kind: 'markRunning' };
      case 'RUNNING':
        if (order?.phase === 'ORDERED' && order.from === self) return { kind: 'migrateOut', order };
        if (held.paused) return { kind: 'resume' };
        return checkpointDue && !order ? { kind: 'checkpoint' } : { kind: 'none' };
    }
  }

  if (vm.owner !== self) return { kind: 'none' };
  switch (vm.state) {
    case 'PENDING':
      return order || (vm.retryAt !== undefined && now < vm.retryAt) ? { kind: 'none' } : { kind: 'start' };
    case 'RUNNING':
      return { kind: 'recover' };
    case 'SUSPENDING':
      return { kind: 'suspendFromImage' };
    case 'DELETING':
      return { kind: 'delete' };
    case 'SUSPENDED':
    case 'FAILED':
      return { kind: 'none' };
  }
}

/**
 * True when `self` is booked by another run that came first: it is the source or target of an order
 * another run wrote that is already handed over (IMAGE_READY), or was ordered earlier (ties broken
 * by id). A node's orders from one run are one booking however many exchanges they make: the run
 * decided them one after another against one round state (a swap both ways, a spill or drain to
 * several partners, a node that gives in one exchange and takes in another), so none is declined.
 */
export function bookedByEarlierRun(vm: ProtocolVm, others: Iterable<ProtocolVm>, self: string): boolean {
  const mine = vm.migration;
  if (!mine) return false;
  for (const other of others) {
    const o = other.migration;
    if (other.id === vm.id || !o || (o.from !== self && o.to !== self)) continue;
    if (sameRun(o, mine)) continue;
    if (
      o.phase === 'IMAGE_READY' ||
      o.orderedAt < mine.orderedAt ||
      (o.orderedAt === mine.orderedAt && o.id < mine.id)
    )
      return true;
  }
  return false;
}

/** Two orders belong to one booking of their nodes when one run (an applied plan, the API) wrote both. */
export const sameRun = (a: MigrationOrder, b: MigrationOrder) => a.origin === b.origin;

/**
 * True while `self` waits on a VM item for the other side of a switchover: a target for the
 * pre-copy's announcement or the final delta, a source that announced its pre-copy for the target
 * to be ready. Such a node watches the one item instead of waiting for its next reconcile.
 */
export function awaitsPeer(vm: ProtocolVm | undefined, self: string, held: Holding | undefined): boolean {
  const order = vm?.migration;
  if (order?.phase !== 'ORDERED') return false;
  if (order.to === self) return vm!.owner !== self;
  return (
    order.from === self &&
    held !== undefined &&
    order.precopiedAt !== undefined &&
    order.targetReadyAt === undefined
  );
}

/**
 * Why an ORDERED migration is aborted (`nextAction`'s abort, or the reaper's), for its history: the
 * step that did not happen before the deadline, or the source's decline of a later run's order.
 */
export function abortReason(order: MigrationOrder, now: number): string {
  if (!isExpired(order, now)) return 'declined: the source is booked by an earlier run';
  if (order.precopiedAt === undefined) return 'expired before the source announced its pre-copy';
  if (order.targetReadyAt === undefined) return 'expired before the target said it was restored and waiting';
  return 'expired before the source handed the final image over';
}

/** Where a source stands in an ORDERED migration of a VM it runs. */
export type SourceStep = 'precopy' | 'waitForTarget' | 'stopAndCopy';

/**
 * The source pre-copies first; once that is announced it keeps the guest running until the target
 * says it is restored and waiting, so the downtime is the final delta's copy, never the target's
 * restore or its discovery of the hand-over. A target that never says so (dead, or unable to
 * restore) lets the order expire: it is aborted and the guest never stopped, where stopping anyway
 * would hand it to a node that has nothing ready (a whole restore while it is down, or nobody to
 * take it until the take deadline settles it). Only a configured `readyWaitMs` stops it earlier.
 */
export function sourceStep(
  order: MigrationOrder,
  now: number,
  t: ProtocolTimings = DEFAULT_TIMINGS,
): SourceStep {
  if (order.precopiedAt === undefined) return 'precopy';
  if (order.targetReadyAt !== undefined) return 'stopAndCopy';
  return t.readyWaitMs !== undefined && now >= order.precopiedAt + t.readyWaitMs
    ? 'stopAndCopy'
    : 'waitForTarget';
}

/** How long each protocol phase may take before anyone may abort or settle it. */
export interface ProtocolTimings {
  /** ORDERED: base time for the source to pre-copy, stop and write the final delta. */
  orderMs: number;
  /** IMAGE_READY: base time for the target to load and take the VM. */
  takeMs: number;
  /** Extra allowance per 64 KiB page of guest memory, for both phases. */
  perPageMs: number;
  /**
   * How long a source that pre-copied keeps the guest running for its target to be ready, after
   * which it stops and hands over anyway (see sourceStep); unset: until the order expires.
   */
  readyWaitMs?: number;
}

export const DEFAULT_TIMINGS: ProtocolTimings = { orderMs: 30_000, takeMs: 30_000, perPageMs: 2 };

/** The deadline of a new order. */
export const orderDeadline = (orderedAt: number, memPages: number, t: ProtocolTimings = DEFAULT_TIMINGS) =>
  orderedAt + t.orderMs + memPages * t.perPageMs;

/** The deadline an order gets when its image is ready: a fresh window for the target. */
export const takeDeadline = (readyAt: number, memPages: number, t: ProtocolTimings = DEFAULT_TIMINGS) =>
  readyAt + t.takeMs + memPages * t.perPageMs;

/** Lease rules shared by the agent (self-fencing) and the reaper (declaring nodes dead). */
export interface LeaseRules {
  leaseMs: number;
  /** The agent stops its guests this long before its lease lapses, by its own clock. */
  fenceMarginMs: number;
  /** The reaper waits this long past a lapsed lease (covers clock skew) before moving a node's VMs. */
  graceMs: number;
}

/** True while a node whose lease runs until `leaseUntil` may still run guests, by its own clock. */
export const mayRunGuests = (leaseUntil: number, now: number, rules: Pick<LeaseRules, 'fenceMarginMs'>) =>
  now < leaseUntil - rules.fenceMarginMs;

/** True when the reaper may treat a node as dead and restart its VMs elsewhere. */
export const isDead = (leaseUntil: number, now: number, rules: Pick<LeaseRules, 'graceMs'>) =>
  now > leaseUntil + rules.graceMs;
