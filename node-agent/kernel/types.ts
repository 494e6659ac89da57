// The contract between the VM kernel (node-agent/kernel) and the agent loop (node-agent/agent).
// The agent decides *what* happens to a VM from the table; the kernel does it to the guest.
import type { LoadFactors, Weights } from '../../shared/domain/types.ts';
import type { ImageRef } from '../../shared/domain/vm-state.ts';
import type { HeldObject } from '../../shared/storage/image-store.ts';
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
  /** Wall time one guest call may take before the kernel stops it and fails the VM (see budget.ts). */
  guestBudgetMs?: number;
  /** Node memory for guests, in pages; disk blocks (one page each) are refused past it. Unlimited if absent. */
  memCapacityPages?: number;
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
  /** Virtual-disk blocks (64 KiB, one page each) the VM holds in node memory. */
  diskBlocks?: number;
  dirtiedPages: number;
  netBytes: number;
  digest: string;
  /** The guest's virtual time of day (epoch ms). */
  vtod: number;
  /** Set when the guest failed (trap, timeout, memory limit); the kernel paused it and will not run it again. */
  error?: string;
}

export interface CheckpointResult {
  image: ImageRef;
  /** Bytes written to the image store by this checkpoint. */
  bytes: number;
  /** Pages written (all resident pages for a full image, dirty ones for a delta). */
  pages: number;
  /** Where the time went: taking the state and building the image, and uploading it (ms). */
  timing?: { encodeMs: number; uploadMs: number };
  /** The image, not uploaded: asked for with `holdBackBytes` and small enough (see ImageStore.putImage). */
  held?: HeldObject;
}

/** What bringing a loaded copy up to a newer image read and wrote. */
export interface ApplyResult {
  /** Pages (and disk blocks) read from the image store and written into the copy. */
  pages: number;
  bytes: number;
  /** Reading the image's manifest and the changed blocks, and writing them into the guest (ms). */
  timing: { downloadMs: number; applyMs: number };
}

/** What a start did beyond loading: a restore that had to skip broken images. */
export interface StartResult {
  recovery?: {
    /** The image the VM was restored from instead of the newest. */
    image: ImageRef;
    /** Why the newer image(s) could not be used. */
    why: string;
    /** Guest time (vTOD) between the broken image and the restored one, in seconds. */
    lostSeconds: number;
  };
  /** Reading the image, and instantiating and restoring the guest (ms). */
  timing?: { downloadMs: number; applyMs: number };
}

export interface Kernel {
  readonly nodeId: string;
  /** Loads a VM (verifying every block's checksum when restoring) and adds it to the schedule. */
  // biome-ignore lint/suspicious/noConfusingVoidType: kernels that never fall back return nothing
  start(vm: VmLaunch): Promise<StartResult | undefined | void>;
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
   * `final`: a migration's final delta, whose sub-page deltas may go one step deeper (see writeImage).
   * `holdBackBytes`: an image of one object up to that size is returned as `held`, not uploaded.
   */
  checkpoint(
    id: string,
    mode: 'full' | 'delta',
    options?: { final?: boolean; holdBackBytes?: number },
  ): Promise<CheckpointResult>;
  /**
   * Brings a paused VM loaded from an image up to a newer image of the same VM in place (a
   * migration target's copy and the final delta): only the blocks that differ from what the copy
   * holds are read, checksum-verified and written; the guest must then digest to what the image
   * and the table say. On any failure the copy is left unusable for another apply (load it whole).
   */
  applyImage?(id: string, image: ImageRef, held?: HeldObject): Promise<ApplyResult>;
  /**
   * The fraction of their bytes the VM's resident pages take in an image (coded blocks), sampled
   * from its memory now: the pre-copy's estimate of a round's wire bytes before one has run.
   */
  wireRatio?(id: string): number;
  /** Runs one tick: shares capacity by the schedule and runs each guest's slice. */
  tick(): void;
  /** Measurements since the previous call (one reporting period), per VM. */
  measure(): VmMeasurement[];
  digest(id: string): string;
  /** Why a loaded VM's guest failed (then it is paused for good), or undefined. */
  failure?(id: string): string | undefined;
  /** Changes a VM's programmed target load (Fig. 5) in the schedule. */
  setTargetLoad(id: string, targetLoad: number | undefined): void;
}
