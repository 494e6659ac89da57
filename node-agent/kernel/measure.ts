// Measuring (Fig. 4 inputs): each VM's CPU, I/O, memory, paging and network over a reporting
// period, its digest, and the dirty-page sampling that measuring and checkpoints share.
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { vmLoad } from '../../shared/domain/load.ts';
import type { LoadFactors } from '../../shared/domain/types.ts';
import { timeoutReason } from './budget.ts';
import {
  type Counters,
  emptyPeriod,
  failVm,
  type KernelState,
  nowNs,
  takeDigest,
  UNITS_PER_CORE,
  type Vm,
  vtodOf,
} from './state.ts';
import type { VmMeasurement } from './types.ts';

/** Brings the VM's dirty marks up to date; `compareAll` ignores the guest's dirty map (full images). */
export function sample(counters: Counters, vm: Vm, compareAll = false) {
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
  counters.scanNanos += nowNs() - t0;
}

/**
 * Takes the memory a fresh guest starts with (its data and what its `init` wrote) as dirty since
 * the image, for its first checkpoint to write, but as written in no measurement period: a start-up
 * is a one-off, not a dirty rate. Counted in the period, it made a guest started during the last
 * report look as if it had rewritten all it holds, so its first move stopped it at once and copied
 * all of it while stopped (see dirtyRateOf in shared/domain/precopy.ts). A restored guest starts
 * from its image the same way (PageTracker.reset). Pages the guest's first ticks write still count.
 */
export function startMeasuring(counters: Counters, vm: Vm) {
  sample(counters, vm, true);
  vm.tracker.takePeriodDirty();
}

/** Every VM's measurement since the previous call; the period's counters start again. */
export function measureAll(state: KernelState): VmMeasurement[] {
  const t0 = nowNs();
  const { counters } = state;
  counters.periodTicks = counters.ticks - counters.measuredAtTick;
  counters.measuredAtTick = counters.ticks;
  const all = [...state.vms.values()];
  digestAll(state, all);
  const out = all.map((vm) => measureVm(state, vm));
  state.counters.totalNanos += nowNs() - t0;
  return out;
}

/**
 * Refreshes, in one watchdog batch, the digest of every guest that has not failed and was called
 * since its digest was taken (a paused guest, or one the last tick already digested, has not
 * changed: no batch at all when none has).
 */
function digestAll(state: KernelState, all: Vm[]) {
  const stale = all.filter((vm) => !vm.error && !vm.digestFresh);
  state.watchdog.each(
    stale.length,
    (i) => takeDigest(stale[i]!),
    (i, ms) => failVm(stale[i]!, timeoutReason('digest', ms)),
    state.guestBudgetMs,
  );
}

function measureVm(state: KernelState, vm: Vm): VmMeasurement {
  sample(state.counters, vm);
  const { tickMs, weights, clock } = state.options;
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
  const out: VmMeasurement = {
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
    vtod: vtodOf(vm, clock),
    ...(vm.error ? { error: vm.error } : {}),
  };
  vm.period = emptyPeriod();
  vm.io.ops = 0;
  vm.io.bytes = 0;
  vm.io.netBytes = 0;
  return out;
}
