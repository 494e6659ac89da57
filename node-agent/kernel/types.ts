// The contract between the VM kernel (node-agent/kernel) and the agent loop (node-agent/agent).
// The agent decides *what* happens to a VM from the table; the kernel does it to the guest.
import type { LoadFactors, Weights } from '../../shared/domain/types.ts';
import type { ImageRef } from '../../shared/domain/vm-state.ts';
import type { GuestSpec } from '../../shared/storage/vms.ts';

export interface KernelOptions {
  nodeId: string;
  /** Work units the node serves per virtual second, shared among its VMs each tick. */
  capacity: number;
  weights: Weights;
  /** Length of one tick in milliseconds of the node clock. */
  tickMs: number;
  /** The node's clock (epoch ms); a test passes a skewed or simulated one. */
  clock: () => number;
}

/** What the agent asks the kernel to run: a VM item's guest, fresh or from its image chain. */
export interface VmLaunch {
  id: string;
  /** The fence the node holds the VM under; written into image keys so images never collide. */
  fence: number;
  guest: GuestSpec;
  memPages: number;
  targetLoad?: number;
  /** Cores the guest may use at most; the kernel caps its claim on each tick (absent: no cap). */
  cpuLimit?: number;
  /** Restore from this image (and its delta chain) instead of starting fresh. */
  image?: ImageRef;
  /** Load but do not schedule until `resume` (a migration target before it owns the VM). */
  paused?: boolean;
}

/** Per-VM measurement over the last reporting period (Fig. 4 inputs plus the kernel's own counters). */
export interface VmMeasurement {
  id: string;
  factors: LoadFactors;
  /** Load under this node's weights. */
  load: number;
  workDemanded: number;
  workDone: number;
  /** Demand not served because the node was over capacity. */
  steal: number;
  cpuNanos: number;
  ioOps: number;
  ioBytes: number;
  residentPages: number;
  dirtiedPages: number;
  netBytes: number;
  digest: string;
  /** The guest's virtual time of day (epoch ms). */
  vtod: number;
  /** Set when the guest trapped; the kernel paused it and will not run it again. */
  error?: string;
}

export interface CheckpointResult {
  image: ImageRef;
  /** Bytes written to the image store by this checkpoint. */
  bytes: number;
  /** Pages written (all resident pages for a full image, dirty ones for a delta). */
  pages: number;
}

export interface Kernel {
  readonly nodeId: string;
  /** Loads a VM (verifying every block's checksum when restoring) and adds it to the schedule. */
  start(vm: VmLaunch): Promise<void>;
  /** Stops scheduling the VM but keeps it in memory (migration stop-and-copy, or a pending take). */
  pause(id: string): void;
  /** Schedules a paused VM again. */
  resume(id: string): void;
  /** Drops the VM from the node without writing anything (it moved on, or the node lost its fence). */
  stop(id: string): void;
  has(id: string): boolean;
  running(): string[];
  /**
   * Writes the VM's state to the image store: `full` writes every page, `delta` only pages dirtied
   * since the previous image of this chain. Safe while the VM runs (a pre-copy), exact when paused.
   */
  checkpoint(id: string, mode: 'full' | 'delta'): Promise<CheckpointResult>;
  /** Runs one tick: shares capacity by the schedule and runs each guest's slice. */
  tick(): void;
  /** Measurements since the previous call (one reporting period), per VM. */
  measure(): VmMeasurement[];
  digest(id: string): string;
  /** Changes a VM's programmed target load (Fig. 5) in the schedule. */
  setTargetLoad(id: string, targetLoad: number | undefined): void;
}
