// The agent's shapes, shared by the agent loop (agent.ts) and the VM operations (ops.ts and the
// handlers): kept apart so that neither imports the other's module.
import type { Action, Holding, LeaseRules, ProtocolTimings } from '../../shared/domain/protocol.ts';
import type { ImageRef } from '../../shared/domain/vm-state.ts';
import type { Logger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import type { HeldObject } from '../../shared/storage/image-store.ts';
import type { LeaseHolder, NodeSpec } from '../../shared/storage/nodes.ts';
import type { VmRecord } from '../../shared/storage/vms.ts';
import type { Kernel } from '../kernel/types.ts';
import type { FaultHook, FaultPoint } from './faults.ts';

/**
 * The kernel the agent drives. One that also runs QEMU VMs (node-agent/drivers/qemu/kernel-bridge.ts)
 * says which guests pre-copy by themselves.
 */
export interface AgentKernel extends Kernel {
  /**
   * True for a guest kind whose driver pre-copies inside its final state (QEMU's live migration):
   * the agent writes no pre-copy rounds of it, and a target prepares no copy from an older image.
   */
  precopiesItself?(guestKind: string): boolean;
}

/**
 * Removes a deleted VM's images from the image store, and publishes an image object a migration
 * carried in the table (without `publish`, the agent publishes through its clients' bucket).
 */
export interface ImageCleaner {
  deleteVmImages(vmId: string): Promise<unknown>;
  publish?(held: HeldObject): Promise<void>;
}

export interface AgentConfig {
  node: NodeSpec;
  lease: Pick<LeaseRules, 'leaseMs' | 'fenceMarginMs'>;
  /** Periodic delta checkpoint of each running VM. */
  checkpointMs: number;
  /** Quiet period a VM gets after it moves here (the balancing config's cooldownMs). */
  cooldownMs: number;
  timings: ProtocolTimings;
}

export interface AgentDeps {
  clients: Clients;
  kernel: AgentKernel;
  clock: () => number;
  log: Logger;
  images?: ImageCleaner;
  /** This process's pid and host, recorded on the node item so a refused second agent can name it. */
  holder?: LeaseHolder;
  faults?: FaultHook;
  newId?: () => string;
}

export type AgentStatus = 'new' | 'ready' | 'waiting' | 'fenced' | 'superseded' | 'crashed' | 'stopped';

export interface Agent {
  readonly nodeId: string;
  readonly kernel: AgentKernel;
  readonly incarnation: string;
  status(): AgentStatus;
  /** Registers the node; waits (by status `waiting`) out a previous incarnation's lease before acting. */
  register(): Promise<void>;
  /** Renews the lease with a load report; on a lost lease fences and re-registers. */
  heartbeat(periodMs: number): Promise<void>;
  /** Reads the VMs filed under this node and starts one operation per VM that needs one. */
  reconcile(): Promise<void>;
  /** Resolves when no VM operation is in flight. */
  idle(): Promise<void>;
  /** Runs one kernel tick, unless the lease no longer allows running guests (then stops them all). */
  tick(): void;
  /** Graceful shutdown: final checkpoints, stop guests, give the lease up. */
  shutdown(): Promise<void>;
  /** The harness's kill: the process is gone; nothing it started may continue. */
  crash(): void;
  /** What the kernel holds, by VM. */
  holdings(): ReadonlyMap<string, Holding>;
  /** Installs the runner's immediate tick (see OpContext.wake). */
  setWaker(waker: () => boolean): void;
}

/** A source's progress between its stop and the hand-over, kept across retries. */
export interface Outbound {
  stoppedAt: number;
  precopy: number;
  /** A final delta the kernel held back for the item (not on S3): published before any image builds on it. */
  held?: HeldObject;
}

/** A guest's paging over the last measured period: the pre-copy's dirty-rate estimate. */
export interface PeriodDirt {
  dirtiedPages: number;
  residentPages: number;
  periodMs: number;
}

/**
 * What started a VM operation: the periodic reconcile, an inbound hint found by it, or a watch that
 * saw the item change (`at`: when that read returned). Logged with a migration's phases.
 */
export interface Wake {
  by: 'reconcile' | 'inbound' | 'watch';
  at: number;
}

/** What one VM operation may see and touch of its agent. */
export interface OpContext {
  self: string;
  /** This agent process's incarnation (recorded on the VMs it marks RUNNING). */
  incarnation: string;
  clients: Clients;
  kernel: AgentKernel;
  clock: () => number;
  log: Logger;
  config: AgentConfig;
  held: Map<string, Holding>;
  records: Map<string, VmRecord>;
  lastCheckpoint: Map<string, number>;
  outbound: Map<string, Outbound>;
  /** Bytes a source pre-copied of a VM it still runs, until it hands the VM over. */
  precopied: Map<string, number>;
  images: ImageCleaner | undefined;
  /** Watches one VM item for the other side of a switchover; acts as soon as it changes from `seen`. */
  watch(id: string, seen: VmRecord): void;
  /** Asks the agent's runner for a kernel tick now (a target that just took a VM); true when it ticked. */
  wake(): boolean;
  /** The VM's paging in the last measured period, if it was measured here. */
  dirt(id: string): PeriodDirt | undefined;
  /** What started this operation, and when (for the migration's timing log only). */
  woke?: Wake;
  /** Runs one protocol step between fault points; throws Crash/Fenced when the node died or fenced meanwhile. */
  step<T>(
    point: FaultPoint,
    vm: string,
    fn: () => Promise<T> | T,
    describe?: (out: T) => ImageRef | undefined,
  ): Promise<T>;
}

/** Acts on one decision about a VM item; true when the VM needs another decision right away (e.g. recover → start). */
export type Handler<K extends Action['kind']> = (
  ctx: OpContext,
  action: Extract<Action, { kind: K }>,
  vm: VmRecord,
  id: string,
) => Promise<boolean> | boolean;
