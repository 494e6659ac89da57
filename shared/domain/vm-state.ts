// The VM lifecycle and migration state machine, as pure data. Storage transitions in
// shared/storage/vms.ts enforce these with conditional writes on the fence.

/**
 * PENDING: placed on `owner`, not yet started there (new, resumed, or restarted by the reaper).
 * RUNNING: the owner runs it. SUSPENDING: the owner is asked to write a full image and stop.
 * SUSPENDED: stopped, whole state in the image; owner kept. DELETING: the owner is asked to
 * stop it and remove its image; the item disappears when done. FAILED: the guest failed by
 * itself (trap, timeout, memory limit, no usable image) and its restart policy gives up; terminal
 * until someone restarts it (`restartVm`); `reason` says why.
 */
export type VmState = 'PENDING' | 'RUNNING' | 'SUSPENDING' | 'SUSPENDED' | 'DELETING' | 'FAILED';

/** What happens when a VM's guest fails by itself: `never` restart it, or restart `on-failure`. */
export type RestartPolicyKind = 'never' | 'on-failure';

export interface RestartPolicy {
  kind: RestartPolicyKind;
  /** For `on-failure`: consecutive failures retried before the VM is FAILED. */
  maxRetries?: number;
}

/**
 * ORDERED: the balancer (or API) wants the VM on `to`; the source pre-copies while it runs.
 * IMAGE_READY: the source stopped it and wrote the final delta; the target may take it.
 * The migration field disappears when the target takes ownership or the order is aborted.
 */
export type MigrationPhase = 'ORDERED' | 'IMAGE_READY';

export interface MigrationOrder {
  id: string;
  from: string;
  to: string;
  phase: MigrationPhase;
  /** Epoch ms; past it, anyone may abort (ORDERED) or settle (IMAGE_READY) the order. */
  deadline: number;
  orderedAt: number;
  /** Who ordered it: a balancer run id, or `api`. */
  origin: string;
  /** The loads the balancer expected the move to change, for learning from outcomes. */
  predicted?: { loadOnSource: number; loadOnTarget: number };
  /** Set at IMAGE_READY: when the source stopped the guest, and bytes written by pre-copy and final delta. */
  stoppedAt?: number;
  bytes?: { precopy: number; final: number };
}

/** Pointer to the newest image of a VM in the image store. */
export interface ImageRef {
  /** S3 key of the manifest (immutable; fence- and sequence-addressed). */
  manifest: string;
  /** Monotonic sequence of images and deltas for this VM. */
  seq: number;
  /** The guest's digest at the time of the image. */
  digest: string;
  /** The guest's virtual time of day when the image was taken (epoch ms). */
  vtod: number;
}

/** True when an order has passed its deadline at `now`. */
export function isExpired(order: MigrationOrder, now: number): boolean {
  return now > order.deadline;
}
