// The emulated VM kernel (Figs. 1, 5): runs WebAssembly guests in time slices from the schedule,
// measures their load, and writes and reads their images in the image store.

import { isBuiltinGuest, PAGE_BYTES } from '../../shared/domain/guests.ts';
import { vmLoad } from '../../shared/domain/load.ts';
import type { LoadFactors } from '../../shared/domain/types.ts';
import { type GuestGlobal, validateGuestModule } from '../../shared/guest-abi.ts';
import { Conflict, Corrupt, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import type { ImageManifest, ImageStore } from '../../shared/storage/image-store.ts';
import type { GuestSpec } from '../../shared/storage/vms.ts';
import { guestBinary, guestModule } from '../guests/index.ts';
import {
  createWatchdog,
  type GuestCall,
  GuestFault,
  memoryReason,
  timeoutReason,
  trapReason,
} from './budget.ts';
import { type DiskBudget, VirtualDisk } from './disk.ts';
import { type Guest, growMemory, instantiateGuest } from './guest.ts';
import { capMemory } from './limits.ts';
import { PageTracker } from './pages.ts';
import { type Claim, type ScheduleEntry, shareCapacity, shareWeights } from './schedule.ts';
import type {
  CheckpointResult,
  Kernel,
  KernelOptions,
  StartResult,
  VmLaunch,
  VmMeasurement,
} from './types.ts';

export { GuestFault } from './budget.ts';
export type { ScheduleEntry } from './schedule.ts';
export type * from './types.ts';

/** Work units one virtual core serves per virtual second: the `cpu` factor is work rate over this. */
export const UNITS_PER_CORE = 1_000_000;
/** A VM's virtual disk size unless its guest params say `diskMiB`. */
export const DEFAULT_DISK_MIB = 16;
/** Params the kernel reads itself; a guest need not declare them. */
const KERNEL_PARAMS = ['diskMiB'] as const;
const MAX_PAGES = 65536;
/** The budget of one guest call unless KernelOptions say otherwise: five ticks, at least 500 ms. */
export const defaultGuestBudgetMs = (tickMs: number) => Math.max(500, 5 * tickMs);
/** A delta whose image would point into more packs than this is written as a full image instead, which bounds what a restore reads. */
export const MAX_CHAIN_PACKS = 32;
/** Older images a restore tries, newest first, when the newest is broken. */
export const MAX_FALLBACK_IMAGES = 8;

/** Monotonic time in ns as a double: unlike hrtime.bigint() it allocates nothing per reading. */
const nowNs = () => performance.now() * 1e6;

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

interface Vm {
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
  guest: Guest;
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
  chain: Promise<unknown>;
  io: { ops: number; bytes: number; netBytes: number };
  period: { ticks: number; demanded: number; done: number; steal: number; cpuNanos: number };
  lastLoad: number;
  lastDemand: number;
  lastShare: number;
}

interface LoadedModule {
  module: WebAssembly.Module;
  globals: GuestGlobal[];
  writesMemory: boolean;
}

interface CheckedModule {
  bytes: Uint8Array;
  globals: GuestGlobal[];
  writesMemory: boolean;
}

export function createKernel(options: KernelOptions, deps: KernelDeps): SeesawKernel {
  const { clock, tickMs, weights } = options;
  if (!(options.capacity >= 0) || !(tickMs > 0))
    throw new InvalidInput('capacity must be ≥ 0 and tickMs > 0');
  const vms = new Map<string, Vm>();
  const starting = new Set<string>();
  const checked = new Map<string, Promise<CheckedModule>>();
  const modules = new Map<string, Promise<LoadedModule>>();
  const stats = { ticks: 0, totalNanos: 0, guestNanos: 0, scanNanos: 0 };
  const guestBudgetMs = options.guestBudgetMs ?? defaultGuestBudgetMs(tickMs);
  // Disk blocks live in node memory: with a memory capacity, a block is admitted only while guest
  // memory plus blocks stay within it (a guest's write that needs one more is refused with -1).
  const memCapacityPages = options.memCapacityPages;
  const diskBudget: DiskBudget = {
    blocks: 0,
    admit() {
      if (memCapacityPages === undefined) return true;
      let pages = diskBudget.blocks + 1;
      for (const vm of vms.values()) pages += vm.guest.memory.buffer.byteLength / PAGE_BYTES;
      return pages <= memCapacityPages;
    },
  };
  const watchdog = createWatchdog(guestBudgetMs);

  /** Marks a guest failed; it stays loaded (paused) until the agent records the failure and stops it. */
  const failVm = (vm: Vm, reason: string) => {
    vm.error ??= reason;
    vm.paused = true;
  };
  /** A guest call's outcome: a trap, or a memory grown past the limit, fails the VM. */
  const callGuest = <T>(vm: Vm, call: GuestCall, fn: () => T): T | undefined => {
    let out: T | undefined;
    try {
      out = fn();
    } catch (error) {
      failVm(vm, trapReason(call, error));
      return undefined;
    }
    if (vm.guest.memory.buffer.byteLength > vm.memLimit * PAGE_BYTES) failVm(vm, memoryReason(vm.memLimit));
    return out;
  };
  /** A guest call made alone (not in a tick's batch) under the budget; GuestFault if the VM failed. */
  const callAlone = <T>(vm: Vm, call: GuestCall, fn: () => T): T => {
    if (vm.error) throw new GuestFault(vm.error);
    let out: T | undefined;
    watchdog.each(
      1,
      () => {
        out = callGuest(vm, call, fn);
      },
      (_, ms) => failVm(vm, timeoutReason(call, ms)),
    );
    if (vm.error) throw new GuestFault(vm.error);
    return out as T;
  };

  const get = (id: string) => {
    const vm = vms.get(id);
    if (!vm) throw new NotFound('vm', id);
    return vm;
  };

  /** The guest's clock: node clock plus offset, held monotonic against a node clock that steps back. */
  const vtodOf = (vm: Vm) => {
    vm.lastVtod = Math.max(vm.lastVtod, clock() + vm.vtodOffset);
    return vm.lastVtod;
  };

  const checkModule = (kind: string): Promise<CheckedModule> => {
    let module = checked.get(kind);
    if (!module) {
      module = (async () => {
        if (isBuiltinGuest(kind)) {
          const bytes = await guestBinary(kind);
          const abi = validateGuestModule(bytes);
          if (!abi.ok) throw new Error(`built-in guest ${kind} breaks the ABI: ${abi.problems.join('; ')}`);
          return { bytes, ...abi.exports };
        }
        if (!kind.startsWith('module:')) throw new InvalidInput(`unknown guest kind "${kind}"`);
        const bytes = await deps.images.getModule(kind.slice('module:'.length));
        const abi = validateGuestModule(bytes);
        if (!abi.ok)
          throw new InvalidInput(`module ${kind} breaks the guest ABI: ${abi.problems.join('; ')}`);
        return { bytes, ...abi.exports };
      })();
      module.catch(() => checked.delete(kind));
      checked.set(kind, module);
    }
    return module;
  };

  /** The module compiled with its memory capped at `memPages` (one compiled copy per kind and cap). */
  const loadModule = (kind: string, memPages: number): Promise<LoadedModule> => {
    const key = `${kind}#${memPages}`;
    let loaded = modules.get(key);
    if (!loaded) {
      loaded = (async () => {
        const { bytes, globals, writesMemory } = await checkModule(kind);
        const capped = capMemory(bytes, memPages);
        const module =
          capped === bytes && isBuiltinGuest(kind)
            ? await guestModule(kind)
            : await WebAssembly.compile(capped as BufferSource);
        return { module, globals, writesMemory };
      })();
      loaded.catch(() => modules.delete(key));
      modules.set(key, loaded);
    }
    return loaded;
  };

  /** Brings the VM's dirty marks up to date; `compareAll` ignores the guest's dirty map (full images). */
  const sample = (vm: Vm, compareAll = false) => {
    const buffer = vm.guest.memory.buffer;
    if (!compareAll && !vm.ranSinceScan && vm.tracker.pages === buffer.byteLength / PAGE_BYTES) return;
    const t0 = nowNs();
    const map = vm.guest.dirtyMap();
    if (map === undefined) vm.tracker.scan(buffer);
    else if (compareAll || vm.tracker.pages === 0) {
      // The full compare finds every change; the map's marks are spent either way.
      const pages = buffer.byteLength / PAGE_BYTES;
      if (map >= 0 && map + pages <= buffer.byteLength) new Uint8Array(buffer, map, pages).fill(0);
      vm.tracker.scan(buffer);
    } else vm.tracker.scanMarked(buffer, map);
    vm.ranSinceScan = false;
    stats.scanNanos += nowNs() - t0;
  };

  /**
   * Loads a VM; when its newest image is broken (Corrupt: missing, unreadable, failing a checksum or
   * a digest), the newest older image of the VM that restores instead, with the guest time lost.
   * Corrupt when none does. Never retries by itself: the agent fails the VM on Corrupt.
   */
  async function launchOrFallBack(vm: VmLaunch): Promise<{ vm: Vm; recovery?: StartResult['recovery'] }> {
    try {
      return { vm: await launch(vm) };
    } catch (error) {
      const newest = vm.image;
      if (!(error instanceof Corrupt) || !newest) throw error;
      const fenceOf = Number(
        /^images\/[^/]+\/(\d+)\//.exec(newest.manifest)?.[1] ?? Number.POSITIVE_INFINITY,
      );
      const older = (await deps.images.listImages(vm.id))
        .filter((r) => r.seq < newest.seq && r.fence <= fenceOf)
        .slice(0, MAX_FALLBACK_IMAGES);
      for (const candidate of older) {
        try {
          const loaded = await launch(
            { ...vm, image: { manifest: candidate.manifest, seq: candidate.seq, digest: '', vtod: 0 } },
            false,
          );
          const m = loaded.manifest!;
          return {
            vm: loaded,
            recovery: {
              image: { manifest: candidate.manifest, seq: m.seq, digest: m.digest, vtod: m.vtod },
              why: error.message,
              lostSeconds: Math.max(0, Math.round((newest.vtod - m.vtod) / 100) / 10),
            },
          };
        } catch (olderError) {
          if (!(olderError instanceof Corrupt)) throw olderError;
        }
      }
      throw new Corrupt(
        `${error.message}; ${older.length ? `none of the ${older.length} older images restores either` : 'no older image'}`,
      );
    }
  }

  async function launch(vm: VmLaunch, checkTableDigest = true): Promise<Vm> {
    if (!Number.isInteger(vm.memPages) || vm.memPages < 1 || vm.memPages > MAX_PAGES)
      throw new InvalidInput(`memPages must be an integer in 1..${MAX_PAGES}`);
    const { module, globals, writesMemory } = await loadModule(vm.guest.kind, vm.memPages);
    const io = { ops: 0, bytes: 0, netBytes: 0 };
    const diskMiB = vm.guest.params?.diskMiB ?? DEFAULT_DISK_MIB;
    if (!(diskMiB > 0 && diskMiB <= 4095)) throw new InvalidInput('diskMiB must be in (0, 4095]');
    const image = vm.image ? await deps.images.getImage(vm.image.manifest) : undefined;
    const m = image?.manifest;
    if (m) {
      if (m.vm !== vm.id)
        throw new Corrupt(`image ${vm.image!.manifest} belongs to VM ${m.vm}, not ${vm.id}`);
      if (m.seq !== vm.image!.seq)
        throw new Corrupt(`image ${vm.image!.manifest} has seq ${m.seq}, not ${vm.image!.seq}`);
      if (m.guest.kind !== vm.guest.kind)
        throw new InvalidInput(`image of ${vm.id} runs ${m.guest.kind}, not ${vm.guest.kind}`);
    }
    const disk = m
      ? VirtualDisk.from(m.disk.bytes, image.disk, diskBudget)
      : new VirtualDisk(Math.floor(diskMiB * 1024 * 1024), diskBudget);
    const record: Partial<Vm> & { io: Vm['io']; disk: VirtualDisk; memLimit: number } = {
      io,
      disk,
      vtodOffset: 0,
      lastVtod: clock(),
      memLimit: vm.memPages,
    };
    // Until the guest exists, a fault is the instantiation's (a start function) or a trap in it.
    const guest = await instantiateGuest(
      module,
      globals,
      { vtod: () => vtodOf(record as Vm), disk, series: vm.guest.series ?? [], io },
      (instantiate) => {
        try {
          return watchdog.one('init', instantiate);
        } catch (error) {
          if (error instanceof GuestFault) throw error;
          throw new GuestFault(trapReason('init', error));
        }
      },
    );
    record.guest = guest;
    const guarded = <T>(call: GuestCall, fn: () => T) => callAlone(record as Vm, call, fn);
    const now = clock();
    let tracker: PageTracker;
    let vtodOffset = 0;
    let lastVtod = now;
    if (m && image) {
      growMemory(guest.memory, Math.max(m.memPages, vm.memPages));
      const bytes = new Uint8Array(guest.memory.buffer);
      bytes.fill(0);
      for (const [p, page] of image.pages) bytes.set(page, p * PAGE_BYTES);
      guest.restoreGlobals(m.globals);
      const digest = guarded('restore', () => guest.digest());
      if (digest !== m.digest)
        throw new Corrupt(`image ${vm.image!.manifest} restores to digest ${digest}, not ${m.digest}`);
      if (checkTableDigest && digest !== vm.image!.digest)
        throw new Corrupt(
          `image ${vm.image!.manifest} restores to digest ${digest}; the table recorded ${vm.image!.digest}`,
        );
      // The guest's clock continues from the image's, never behind it, whatever this node's clock says.
      vtodOffset = Math.max(m.vtod, now + m.vtodOffset) - now;
      lastVtod = m.vtod;
      tracker = new PageTracker(0);
      tracker.reset(guest.memory.buffer);
    } else {
      growMemory(guest.memory, vm.memPages);
      guest.setParams(vm.guest.params ?? {}, KERNEL_PARAMS);
      guarded('init', () => guest.init());
      tracker = new PageTracker(0);
    }
    return Object.assign(record, {
      id: vm.id,
      fence: vm.fence,
      spec: vm.guest,
      targetLoad: vm.targetLoad,
      capPerTick:
        vm.cpuLimit === undefined ? undefined : Math.floor((vm.cpuLimit * UNITS_PER_CORE * tickMs) / 1000),
      paused: vm.paused ?? false,
      guest,
      tracker,
      writesMemory,
      ranSinceScan: true,
      vtodOffset,
      lastVtod,
      seq: m?.seq ?? 0,
      lastDigest: m?.digest ?? '',
      ...(m ? { manifest: m } : {}),
      chain: Promise.resolve(),
      period: { ticks: 0, demanded: 0, done: 0, steal: 0, cpuNanos: 0 },
      lastLoad: 0,
      lastDemand: 0,
      lastShare: 0,
    }) as Vm;
  }

  async function snapshotAndWrite(vm: Vm, mode: 'full' | 'delta'): Promise<CheckpointResult> {
    if (vms.get(vm.id) !== vm) throw new NotFound('vm', vm.id);
    // Everything up to putImage is synchronous, so pages, globals, disk and clock are one instant.
    const t0 = nowNs();
    const digest = callAlone(vm, 'digest', () => vm.guest.digest());
    const kind =
      mode === 'full' || !vm.manifest || vm.manifest.packs.length >= MAX_CHAIN_PACKS ? 'full' : 'delta';
    sample(vm, kind === 'full');
    const pages = vm.tracker.copyPages(vm.guest.memory.buffer, vm.tracker.pagesFor(kind));
    const marks = vm.tracker.markImaged();
    const disk = vm.disk.takeBlocks(kind);
    const seq = ++vm.seq;
    const write = {
      vm: vm.id,
      fence: vm.fence,
      seq,
      kind,
      ...(vm.manifest ? { previous: vm.manifest } : {}),
      guest: vm.spec,
      memPages: vm.guest.memory.buffer.byteLength / PAGE_BYTES,
      pages,
      disk: { bytes: vm.disk.bytes, blocks: disk.blocks },
      globals: vm.guest.captureGlobals(),
      vtod: vtodOf(vm),
      vtodOffset: vm.vtodOffset,
      digest,
      createdAt: clock(),
    } as const;
    stats.totalNanos += nowNs() - t0;
    try {
      const out = await deps.images.putImage(write);
      vm.manifest = out.manifest;
      return { image: out.ref, bytes: out.bytes, pages: pages.size };
    } catch (error) {
      vm.tracker.restoreMarks(marks);
      vm.disk.restoreMarks(disk.marks);
      throw error;
    }
  }

  const kernel: SeesawKernel = {
    nodeId: options.nodeId,

    async start(launch_) {
      if (vms.has(launch_.id) || starting.has(launch_.id))
        throw new Conflict(`vm ${launch_.id} is already on node ${options.nodeId}`);
      starting.add(launch_.id);
      try {
        const { vm, recovery } = await launchOrFallBack(launch_);
        vms.set(launch_.id, vm);
        return recovery ? { recovery } : undefined;
      } finally {
        starting.delete(launch_.id);
      }
    },

    pause(id) {
      get(id).paused = true;
    },

    resume(id) {
      const vm = get(id);
      if (vm.error) throw new Conflict(`vm ${id} failed and cannot run: ${vm.error}`);
      vm.paused = false;
    },

    stop(id) {
      vms.get(id)?.disk.release();
      vms.delete(id);
    },

    has: (id) => vms.has(id),

    running: () => [...vms.values()].filter((vm) => !vm.paused).map((vm) => vm.id),

    checkpoint(id, mode) {
      const vm = get(id);
      const result = vm.chain.then(() => snapshotAndWrite(vm, mode));
      vm.chain = result.catch(() => undefined);
      return result;
    },

    tick() {
      // One clock read between guest calls times both the guest before it and the kernel after it.
      const t0 = nowNs();
      let guestNanos = 0;
      const perTick = (options.capacity * tickMs) / 1000;
      const all = [...vms.values()];
      // Start each tick at another VM, so a tick cut short by slow guests (see `each`) starves nobody.
      const first = all.length ? stats.ticks % all.length : 0;
      const order = all.slice(first).concat(all.slice(0, first));
      const ready = order.filter((vm) => !vm.paused);
      const n = ready.length;
      const demands = new Array<number>(n).fill(0);
      const scheduled: Vm[] = [];
      const claims: Claim[] = [];
      let shares = new Map<string, number>();
      let t = nowNs();
      // One watchdog batch for the tick: steps 0..n-1 ask each VM's demand, step n shares the
      // capacity, steps n+1..2n run the VMs that were scheduled.
      const demandStep = (i: number) => {
        const vm = ready[i]!;
        t = nowNs();
        const d = callGuest(vm, 'demand', () => vm.guest.demand(tickMs));
        let demand = d === undefined ? Math.floor(perTick) : Math.max(0, d | 0);
        if (vm.capPerTick !== undefined) demand = Math.min(demand, vm.capPerTick);
        demands[i] = demand;
        const now = nowNs();
        vm.period.cpuNanos += now - t;
        guestNanos += now - t;
      };
      const shareStep = () => {
        for (let i = 0; i < n; i++) {
          const vm = ready[i]!;
          if (vm.paused) continue;
          scheduled.push(vm);
          claims.push({ id: vm.id, demand: demands[i]!, weight: 1 });
        }
        const weightsOf = shareWeights(scheduled.map((vm) => vm.targetLoad));
        for (let i = 0; i < claims.length; i++) claims[i]!.weight = weightsOf[i]!;
        shares = shareCapacity(perTick, claims);
      };
      const runStep = (i: number) => {
        const vm = scheduled[i];
        if (!vm) return;
        const demand = claims[i]!.demand;
        const share = Math.min(shares.get(vm.id) ?? 0, 0x7fffffff);
        t = nowNs();
        let used = callGuest(vm, 'run', () => vm.guest.run(share)) ?? 0;
        const spent = nowNs() - t;
        vm.ranSinceScan = vm.writesMemory || vm.tracker.pages === 0;
        used = Math.min(Math.max(0, used | 0), share);
        vm.period.cpuNanos += spent;
        guestNanos += spent;
        vm.period.demanded += demand;
        vm.period.done += used;
        vm.period.steal += Math.max(0, demand - share);
        vm.lastDemand = demand;
        vm.lastShare = share;
      };
      watchdog.each(
        2 * n + 1,
        (step) => {
          if (step < n) demandStep(step);
          else if (step === n) shareStep();
          else runStep(step - n - 1);
        },
        (step, ms) => {
          if (step < n) failVm(ready[step]!, timeoutReason('demand', ms));
          else if (step > n && scheduled[step - n - 1]) {
            const vm = scheduled[step - n - 1]!;
            vm.ranSinceScan = true;
            failVm(vm, timeoutReason('run', ms));
          }
        },
        guestBudgetMs,
      );
      for (const vm of all) vm.period.ticks++;
      stats.ticks++;
      stats.guestNanos += guestNanos;
      stats.totalNanos += nowNs() - t0;
    },

    measure() {
      const t0 = nowNs();
      const all = [...vms.values()];
      const live = all.filter((vm) => !vm.error);
      watchdog.each(
        live.length,
        (i) => {
          const vm = live[i]!;
          const digest = callGuest(vm, 'digest', () => vm.guest.digest());
          if (digest !== undefined) vm.lastDigest = digest;
        },
        (i, ms) => failVm(live[i]!, timeoutReason('digest', ms)),
        guestBudgetMs,
      );
      const out: VmMeasurement[] = [];
      for (const vm of all) {
        sample(vm);
        const seconds = (vm.period.ticks * tickMs) / 1000;
        const dirtiedPages = vm.tracker.takePeriodDirty();
        const rate = (x: number) => (seconds > 0 ? x / seconds : 0);
        const factors: LoadFactors = {
          cpu: rate(vm.period.done) / UNITS_PER_CORE,
          io: rate(vm.io.ops) / 1000,
          mem: (vm.tracker.residentPages * PAGE_BYTES) / 2 ** 30,
          paging: rate(dirtiedPages) / 1000,
          net: rate(vm.io.netBytes) / 2 ** 20,
        };
        const load = vmLoad(factors, weights);
        vm.lastLoad = load;
        out.push({
          id: vm.id,
          factors,
          load,
          workDemanded: vm.period.demanded,
          workDone: vm.period.done,
          steal: vm.period.steal,
          cpuNanos: Math.round(vm.period.cpuNanos),
          ioOps: vm.io.ops,
          ioBytes: vm.io.bytes,
          residentPages: vm.tracker.residentPages,
          diskBlocks: vm.disk.blocks.size,
          dirtiedPages,
          netBytes: vm.io.netBytes,
          digest: vm.lastDigest,
          vtod: vtodOf(vm),
          ...(vm.error ? { error: vm.error } : {}),
        });
        vm.period = { ticks: 0, demanded: 0, done: 0, steal: 0, cpuNanos: 0 };
        vm.io.ops = 0;
        vm.io.bytes = 0;
        vm.io.netBytes = 0;
      }
      stats.totalNanos += nowNs() - t0;
      return out;
    },

    digest(id) {
      const vm = get(id);
      return callAlone(vm, 'digest', () => vm.guest.digest());
    },

    failure: (id) => vms.get(id)?.error,

    guestBudgetMs,

    setTargetLoad(id, targetLoad) {
      get(id).targetLoad = targetLoad;
    },

    schedule: () =>
      [...vms.values()].map((vm) => ({
        vmId: vm.id,
        load: vm.lastLoad,
        ...(vm.targetLoad !== undefined ? { targetLoad: vm.targetLoad } : {}),
        info: { paused: vm.paused, demand: vm.lastDemand, share: vm.lastShare },
      })),

    diskBlocks: () => diskBudget.blocks,

    stats: () => ({ ...stats, watchdogBatches: watchdog.batches(), watchdogNanos: watchdog.nanos() }),

    vtod: (id) => vtodOf(get(id)),
  };
  return kernel;
}
