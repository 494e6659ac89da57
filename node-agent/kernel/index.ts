// The emulated VM kernel (Figs. 1, 5): runs WebAssembly guests in time slices from the schedule,
// measures their load, and writes and reads their images in the image store.
import { vmLoad } from '../../shared/domain/load.ts';
import type { LoadFactors } from '../../shared/domain/types.ts';
import { type GuestGlobal, validateGuestModule } from '../../shared/guest-abi.ts';
import { Conflict, Corrupt, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import type { ImageManifest, ImageStore } from '../../shared/storage/image-store.ts';
import type { GuestSpec } from '../../shared/storage/vms.ts';
import { guestBinary, guestModule, isBuiltinGuest } from '../guests/index.ts';
import { VirtualDisk } from './disk.ts';
import { type Guest, growMemory, instantiateGuest } from './guest.ts';
import { PAGE, PageTracker } from './pages.ts';
import { type Claim, type ScheduleEntry, shareCapacity, shareWeights } from './schedule.ts';
import type { CheckpointResult, Kernel, KernelOptions, VmLaunch, VmMeasurement } from './types.ts';

export type { ScheduleEntry } from './schedule.ts';
export type * from './types.ts';

/** Work units one virtual core serves per virtual second: the `cpu` factor is work rate over this. */
export const UNITS_PER_CORE = 1_000_000;
/** A VM's virtual disk size unless its guest params say `diskMiB`. */
export const DEFAULT_DISK_MIB = 16;
/** Params the kernel reads itself; a guest need not declare them. */
const KERNEL_PARAMS = ['diskMiB'] as const;
const MAX_PAGES = 65536;
/** A delta whose image would point into more packs than this is written as a full image instead, which bounds what a restore reads. */
export const MAX_CHAIN_PACKS = 32;

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
}

export interface SeesawKernel extends Kernel {
  /** The Fig. 5 schedule: one entry per VM on the node. */
  schedule(): ScheduleEntry[];
  stats(): KernelStats;
  /** A VM's virtual time of day now (epoch ms). */
  vtod(id: string): number;
}

interface Vm {
  id: string;
  fence: number;
  spec: GuestSpec;
  targetLoad: number | undefined;
  /** Work units per tick the guest may claim at most (its CPU limit); undefined: no cap. */
  capPerTick: number | undefined;
  paused: boolean;
  error?: string;
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

export function createKernel(options: KernelOptions, deps: KernelDeps): SeesawKernel {
  const { clock, tickMs, weights } = options;
  if (!(options.capacity >= 0) || !(tickMs > 0))
    throw new InvalidInput('capacity must be ≥ 0 and tickMs > 0');
  const vms = new Map<string, Vm>();
  const starting = new Set<string>();
  const modules = new Map<string, Promise<LoadedModule>>();
  const stats: KernelStats = { ticks: 0, totalNanos: 0, guestNanos: 0, scanNanos: 0 };

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

  const loadModule = (kind: string): Promise<LoadedModule> => {
    let loaded = modules.get(kind);
    if (!loaded) {
      loaded = (async () => {
        if (isBuiltinGuest(kind)) {
          const abi = validateGuestModule(await guestBinary(kind));
          if (!abi.ok) throw new Error(`built-in guest ${kind} breaks the ABI: ${abi.problems.join('; ')}`);
          return { module: await guestModule(kind), ...abi.exports };
        }
        if (!kind.startsWith('module:')) throw new InvalidInput(`unknown guest kind "${kind}"`);
        const bytes = await deps.images.getModule(kind.slice('module:'.length));
        const abi = validateGuestModule(bytes);
        if (!abi.ok)
          throw new InvalidInput(`module ${kind} breaks the guest ABI: ${abi.problems.join('; ')}`);
        return { module: await WebAssembly.compile(bytes as BufferSource), ...abi.exports };
      })();
      loaded.catch(() => modules.delete(kind));
      modules.set(kind, loaded);
    }
    return loaded;
  };

  /** Brings the VM's dirty marks up to date; `compareAll` ignores the guest's dirty map (full images). */
  const sample = (vm: Vm, compareAll = false) => {
    const buffer = vm.guest.memory.buffer;
    if (!compareAll && !vm.ranSinceScan && vm.tracker.pages === buffer.byteLength / PAGE) return;
    const t0 = nowNs();
    const map = vm.guest.dirtyMap();
    if (map === undefined) vm.tracker.scan(buffer);
    else if (compareAll || vm.tracker.pages === 0) {
      // The full compare finds every change; the map's marks are spent either way.
      const pages = buffer.byteLength / PAGE;
      if (map >= 0 && map + pages <= buffer.byteLength) new Uint8Array(buffer, map, pages).fill(0);
      vm.tracker.scan(buffer);
    } else vm.tracker.scanMarked(buffer, map);
    vm.ranSinceScan = false;
    stats.scanNanos += nowNs() - t0;
  };

  async function launch(vm: VmLaunch): Promise<Vm> {
    if (!Number.isInteger(vm.memPages) || vm.memPages < 1 || vm.memPages > MAX_PAGES)
      throw new InvalidInput(`memPages must be an integer in 1..${MAX_PAGES}`);
    const { module, globals, writesMemory } = await loadModule(vm.guest.kind);
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
      ? VirtualDisk.from(m.disk.bytes, image.disk)
      : new VirtualDisk(Math.floor(diskMiB * 1024 * 1024));
    const record: Partial<Vm> & { io: Vm['io']; disk: VirtualDisk } = {
      io,
      disk,
      vtodOffset: 0,
      lastVtod: clock(),
    };
    const guest = await instantiateGuest(module, globals, {
      vtod: () => vtodOf(record as Vm),
      disk,
      series: vm.guest.series ?? [],
      io,
    });
    const now = clock();
    let tracker: PageTracker;
    let vtodOffset = 0;
    let lastVtod = now;
    if (m && image) {
      growMemory(guest.memory, Math.max(m.memPages, vm.memPages));
      const bytes = new Uint8Array(guest.memory.buffer);
      bytes.fill(0);
      for (const [p, page] of image.pages) bytes.set(page, p * PAGE);
      guest.restoreGlobals(m.globals);
      const digest = guest.digest();
      if (digest !== m.digest)
        throw new Corrupt(`image ${vm.image!.manifest} restores to digest ${digest}, not ${m.digest}`);
      // The guest's clock continues from the image's, never behind it, whatever this node's clock says.
      vtodOffset = Math.max(m.vtod, now + m.vtodOffset) - now;
      lastVtod = m.vtod;
      tracker = new PageTracker(0);
      tracker.reset(guest.memory.buffer);
    } else {
      growMemory(guest.memory, vm.memPages);
      guest.setParams(vm.guest.params ?? {}, KERNEL_PARAMS);
      guest.init();
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
      memPages: vm.guest.memory.buffer.byteLength / PAGE,
      pages,
      disk: { bytes: vm.disk.bytes, blocks: disk.blocks },
      globals: vm.guest.captureGlobals(),
      vtod: vtodOf(vm),
      vtodOffset: vm.vtodOffset,
      digest: vm.guest.digest(),
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
        vms.set(launch_.id, await launch(launch_));
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
      const fail = (vm: Vm, error: unknown) => {
        vm.error = (error as Error).message ?? String(error);
        vm.paused = true;
      };
      const scheduled: Vm[] = [];
      const claims: Claim[] = [];
      let t = nowNs();
      for (const vm of all) {
        if (vm.paused) continue;
        let demand = 0;
        try {
          const d = vm.guest.demand(tickMs);
          demand = d === undefined ? Math.floor(perTick) : Math.max(0, d | 0);
          if (vm.capPerTick !== undefined) demand = Math.min(demand, vm.capPerTick);
        } catch (error) {
          fail(vm, error);
        }
        const now = nowNs();
        vm.period.cpuNanos += now - t;
        guestNanos += now - t;
        t = now;
        if (vm.paused) continue;
        scheduled.push(vm);
        claims.push({ id: vm.id, demand, weight: 1 });
      }
      const weightsOf = shareWeights(scheduled.map((vm) => vm.targetLoad));
      for (let i = 0; i < claims.length; i++) claims[i]!.weight = weightsOf[i]!;
      const shares = shareCapacity(perTick, claims);
      for (let i = 0; i < scheduled.length; i++) {
        const vm = scheduled[i]!;
        const demand = claims[i]!.demand;
        const share = Math.min(shares.get(vm.id) ?? 0, 0x7fffffff);
        t = nowNs();
        let used = 0;
        try {
          used = vm.guest.run(share);
        } catch (error) {
          fail(vm, error);
        }
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
      }
      for (const vm of all) vm.period.ticks++;
      stats.ticks++;
      stats.guestNanos += guestNanos;
      stats.totalNanos += nowNs() - t0;
    },

    measure() {
      const t0 = nowNs();
      const out: VmMeasurement[] = [];
      for (const vm of vms.values()) {
        sample(vm);
        const seconds = (vm.period.ticks * tickMs) / 1000;
        const dirtiedPages = vm.tracker.takePeriodDirty();
        const rate = (x: number) => (seconds > 0 ? x / seconds : 0);
        const factors: LoadFactors = {
          cpu: rate(vm.period.done) / UNITS_PER_CORE,
          io: rate(vm.io.ops) / 1000,
          mem: (vm.tracker.residentPages * PAGE) / 2 ** 30,
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
          dirtiedPages,
          netBytes: vm.io.netBytes,
          digest: vm.guest.digest(),
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

    digest: (id) => get(id).guest.digest(),

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

    stats: () => ({ ...stats }),

    vtod: (id) => vtodOf(get(id)),
  };
  return kernel;
}
