// What the kernel's parts (tick, measure, images) share: the loaded VMs, the counters of the
// kernel's own time, the guest budget, and the calls into a guest under it.
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { NotFound } from '../../shared/storage/errors.ts';
import type { ImageManifest, ImageStore } from '../../shared/storage/image-store.ts';
import type { GuestSpec } from '../../shared/storage/vms.ts';
import {
  type GuestCall,
  GuestFault,
  memoryReason,
  timeoutReason,
  trapReason,
  type Watchdog,
} from './budget.ts';
import type { DiskBudget, VirtualDisk } from './disk.ts';
import type { Guest } from './guest.ts';
import type { ModuleCache } from './modules.ts';
import type { PageTracker } from './pages.ts';
import type { KernelOptions } from './types.ts';

/** Work units one virtual core serves per virtual second: the `cpu` factor is work rate over this. */
export const UNITS_PER_CORE = 1_000_000;

/** Monotonic time in ns as a double: unlike hrtime.bigint() it allocates nothing per reading. */
export const nowNs = () => performance.now() * 1e6;

/** A loaded VM: its guest and everything the kernel keeps about it. */
export interface Vm {
  id: string;
  fence: number;
  spec: GuestSpec;
  targetLoad: number | undefined;
  /** Work units per tick the guest may claim at most (its CPU limit); undefined: no cap. */
  capPerTick: number | undefined;
  paused: boolean;
  /** Why the guest failed (see budget.ts); a failed guest is never called again. */
  error?: string;
  /** The memory limit in pages (the VM's memPages). */
  memLimit: number;
  lastDigest: string;
  /** Whether lastDigest is the digest of the guest as it is now (no guest call since it was taken). */
  digestFresh: boolean;
  guest: Guest;
  /**
   * The guest memory's buffer as of the last size check. Growing a wasm memory detaches its old
   * buffer (byteLength 0), so a non-zero byteLength here proves the size is unchanged without the
   * cost of the `memory.buffer` getter on every call.
   */
  checkedBuffer?: ArrayBuffer;
  tracker: PageTracker;
  /** False for guests that cannot write memory (see validateGuestModule): scanned once, then never. */
  writesMemory: boolean;
  /** Whether the guest ran since its memory was last scanned; an unrun guest cannot have dirtied a page. */
  ranSinceScan: boolean;
  disk: VirtualDisk;
  vtodOffset: number;
  lastVtod: number;
  seq: number;
  manifest?: ImageManifest;
  /**
   * The pages as the newest image holds them (with their sha256), so the next delta image can send
   * a dirty page as its XOR against them (see sentPages in images.ts); bounded by MAX_SENT_PAGES.
   */
  sent: Map<number, SentPage>;
  /** Checkpoints of this VM, one after another. */
  chain: Promise<unknown>;
  io: { ops: number; bytes: number; netBytes: number };
  period: Period;
  lastLoad: number;
  lastDemand: number;
  lastShare: number;
}

/** A page's contents as last imaged, and its sha256 in that image's manifest. */
export interface SentPage {
  bytes: Uint8Array;
  sha256: string;
}

/** A VM's counters over the current reporting period. */
export interface Period {
  ticks: number;
  demanded: number;
  done: number;
  steal: number;
  cpuNanos: number;
}

export const emptyPeriod = (): Period => ({ ticks: 0, demanded: 0, done: 0, steal: 0, cpuNanos: 0 });

/** The kernel's own time, for the overhead benchmark (see KernelStats). */
export interface Counters {
  ticks: number;
  /** `ticks` at the last measure, and the ticks between the last two (to foresee the next measure). */
  measuredAtTick: number;
  periodTicks: number;
  totalNanos: number;
  guestNanos: number;
  scanNanos: number;
}

export interface KernelState {
  options: KernelOptions;
  images: ImageStore;
  vms: Map<string, Vm>;
  /** VMs whose start is under way (not yet in `vms`). */
  starting: Set<string>;
  counters: Counters;
  guestBudgetMs: number;
  watchdog: Watchdog;
  diskBudget: DiskBudget;
  modules: ModuleCache;
}

export function getVm(state: KernelState, id: string): Vm {
  const vm = state.vms.get(id);
  if (!vm) throw new NotFound('vm', id);
  return vm;
}

/** The guest's clock: node clock plus offset, held monotonic against a node clock that steps back. */
export function vtodOf(vm: Pick<Vm, 'lastVtod' | 'vtodOffset'>, clock: () => number): number {
  vm.lastVtod = Math.max(vm.lastVtod, clock() + vm.vtodOffset);
  return vm.lastVtod;
}

/** Marks a guest failed; it stays loaded (paused) until the agent records the failure and stops it. */
export function failVm(vm: Vm, reason: string) {
  vm.error ??= reason;
  vm.paused = true;
}

/** A guest call's outcome: a trap, or a memory grown past the limit, fails the VM. */
export function callGuest<T>(vm: Vm, call: GuestCall, fn: () => T): T | undefined {
  let out: T | undefined;
  if (call !== 'digest') vm.digestFresh = false;
  try {
    out = fn();
  } catch (error) {
    failVm(vm, trapReason(call, error));
    return undefined;
  }
  if (!vm.checkedBuffer?.byteLength) {
    vm.checkedBuffer = vm.guest.memory.buffer;
    if (vm.checkedBuffer.byteLength > vm.memLimit * PAGE_BYTES) failVm(vm, memoryReason(vm.memLimit));
  }
  return out;
}

/** The guest's digest, taken under the budget of the batch it runs in; undefined if the VM failed. */
export function takeDigest(vm: Vm): string | undefined {
  const digest = callGuest(vm, 'digest', () => vm.guest.digest());
  if (digest === undefined) return undefined;
  vm.lastDigest = digest;
  vm.digestFresh = true;
  return digest;
}

/** A guest call made alone (not in a tick's batch) under the budget; GuestFault if the VM failed. */
export function callAlone<T>(state: KernelState, vm: Vm, call: GuestCall, fn: () => T): T {
  if (vm.error) throw new GuestFault(vm.error);
  let out: T | undefined;
  state.watchdog.each(
    1,
    () => {
      out = callGuest(vm, call, fn);
    },
    (_, ms) => failVm(vm, timeoutReason(call, ms)),
  );
  if (vm.error) throw new GuestFault(vm.error);
  return out as T;
}

/**
 * Disk blocks live in node memory: with a memory capacity, a block is admitted only while guest
 * memory plus blocks stay within it (a guest's write that needs one more is refused with -1).
 */
export function nodeDiskBudget(vms: Map<string, Vm>, memCapacityPages: number | undefined): DiskBudget {
  const budget: DiskBudget = {
    blocks: 0,
    admit() {
      if (memCapacityPages === undefined) return true;
      let pages = budget.blocks + 1;
      for (const vm of vms.values()) pages += vm.guest.memory.buffer.byteLength / PAGE_BYTES;
      return pages <= memCapacityPages;
    },
  };
  return budget;
}
