// The emulated VM kernel (Figs. 1, 5): runs WebAssembly guests in time slices from the schedule
// (tick.ts), measures their load (measure.ts), and writes and reads their images in the image
// store (images.ts). This file puts the parts together behind the Kernel interface.
import { Conflict, InvalidInput } from '../../shared/storage/errors.ts';
import type { ImageStore } from '../../shared/storage/image-store.ts';
import { applyImage } from './apply.ts';
import { createWatchdog } from './budget.ts';
import { launchOrFallBack, wireRatio, writeImage } from './images.ts';
import { measureAll } from './measure.ts';
import { createModuleCache } from './modules.ts';
import type { ScheduleEntry } from './schedule.ts';
import {
  callAlone,
  getVm,
  type KernelState,
  nodeDiskBudget,
  UNITS_PER_CORE,
  type Vm,
  vtodOf,
} from './state.ts';
import { runTick } from './tick.ts';
import type { Kernel, KernelOptions } from './types.ts';

export { GuestFault } from './budget.ts';
export { MAX_CHAIN_PACKS } from './images.ts';
export type { ScheduleEntry } from './schedule.ts';
export type * from './types.ts';
export { UNITS_PER_CORE };

/** The budget of one guest call unless KernelOptions say otherwise: five ticks, at least 500 ms. */
export const defaultGuestBudgetMs = (tickMs: number) => Math.max(500, 5 * tickMs);

export interface KernelDeps {
  images: ImageStore;
}

/** Where the kernel's own time goes, for the overhead benchmark. */
export interface KernelStats {
  ticks: number;
  /** Wall time inside tick(), measure() and checkpoint snapshots, in ns. */
  totalNanos: number;
  /** Of which spent inside guests (demand and run). */
  guestNanos: number;
  /** Of which spent scanning memory for dirty pages. */
  scanNanos: number;
  /** Watchdog batches started (one timer thread each) to hold guests to their budget. */
  watchdogBatches: number;
  /** Of totalNanos, spent starting and stopping watchdogs. */
  watchdogNanos: number;
}

export interface SeesawKernel extends Kernel {
  /** The Fig. 5 schedule: one entry per VM on the node. */
  schedule(): ScheduleEntry[];
  stats(): KernelStats;
  /** A VM's virtual time of day now (epoch ms). */
  vtod(id: string): number;
  /** The guest budget, in ms per call. */
  readonly guestBudgetMs: number;
  failure(id: string): string | undefined;
  /** Disk blocks held in memory across the node's VMs. */
  diskBlocks(): number;
}

export function createKernel(options: KernelOptions, deps: KernelDeps): SeesawKernel {
  if (!(options.capacity >= 0) || !(options.tickMs > 0))
    throw new InvalidInput('capacity must be ≥ 0 and tickMs > 0');
  const guestBudgetMs = options.guestBudgetMs ?? defaultGuestBudgetMs(options.tickMs);
  const vms = new Map<string, Vm>();
  const state: KernelState = {
    options,
    images: deps.images,
    vms,
    starting: new Set(),
    counters: { ticks: 0, measuredAtTick: 0, periodTicks: 0, totalNanos: 0, guestNanos: 0, scanNanos: 0 },
    guestBudgetMs,
    watchdog: createWatchdog(guestBudgetMs),
    diskBudget: nodeDiskBudget(vms, options.memCapacityPages),
    modules: createModuleCache(deps.images),
  };
  return { nodeId: options.nodeId, guestBudgetMs, ...lifecycle(state), ...observation(state) };
}

/** Starting, pausing, resuming, stopping and checkpointing VMs. */
function lifecycle(state: KernelState) {
  const { vms, starting } = state;
  return {
    async start(launch) {
      if (vms.has(launch.id) || starting.has(launch.id))
        throw new Conflict(`vm ${launch.id} is already on node ${state.options.nodeId}`);
      starting.add(launch.id);
      try {
        const { vm, recovery, timing } = await launchOrFallBack(state, launch);
        vms.set(launch.id, vm);
        return { ...(recovery ? { recovery } : {}), ...(timing ? { timing } : {}) };
      } finally {
        starting.delete(launch.id);
      }
    },
    pause(id) {
      getVm(state, id).paused = true;
    },
    resume(id) {
      const vm = getVm(state, id);
      if (vm.error) throw new Conflict(`vm ${id} failed and cannot run: ${vm.error}`);
      vm.paused = false;
    },
    stop(id) {
      vms.get(id)?.disk.release();
      vms.delete(id);
    },
    checkpoint(id, mode, options) {
      const vm = getVm(state, id);
      const result = vm.chain.then(() => writeImage(state, vm, mode, options));
      vm.chain = result.catch(() => undefined);
      return result;
    },
    applyImage(id, image, held) {
      const vm = getVm(state, id);
      const result = vm.chain.then(() => applyImage(state, vm, image, held));
      vm.chain = result.catch(() => undefined);
      return result;
    },
    tick: () => runTick(state),
    setTargetLoad(id, targetLoad) {
      getVm(state, id).targetLoad = targetLoad;
    },
  } satisfies Partial<SeesawKernel>;
}

/** Reading the node's state: measurements, digests, the schedule, the kernel's own counters. */
function observation(state: KernelState) {
  const { vms, counters, watchdog, options } = state;
  return {
    has: (id) => vms.has(id),
    running: () => [...vms.values()].filter((vm) => !vm.paused).map((vm) => vm.id),
    measure: () => measureAll(state),
    digest(id) {
      const vm = getVm(state, id);
      return callAlone(state, vm, 'digest', () => vm.guest.digest());
    },
    failure: (id) => vms.get(id)?.error,
    wireRatio: (id) => wireRatio(state, getVm(state, id)),
    schedule: () =>
      [...vms.values()].map((vm) => ({
        vmId: vm.id,
        load: vm.lastLoad,
        ...(vm.targetLoad !== undefined ? { targetLoad: vm.targetLoad } : {}),
        info: { paused: vm.paused, demand: vm.lastDemand, share: vm.lastShare },
      })),
    diskBlocks: () => state.diskBudget.blocks,
    stats: () => ({
      ticks: counters.ticks,
      totalNanos: counters.totalNanos,
      guestNanos: counters.guestNanos,
      scanNanos: counters.scanNanos,
      watchdogBatches: watchdog.batches(),
      watchdogNanos: watchdog.nanos(),
    }),
    vtod: (id) => vtodOf(getVm(state, id), options.clock),
  } satisfies Partial<SeesawKernel>;
}
