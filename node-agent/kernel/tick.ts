// One tick of the schedule (Fig. 5): ask each ready guest what it wants, share the node's capacity
// for the tick by target load, and run each guest's slice, all in one watchdog batch. A watchdog
// batch starts and joins a timer thread, which on a busy machine costs a wait for the scheduler,
// so the last tick before a foreseen measure also takes the digests measure needs in its batch.
import { timeoutReason } from './budget.ts';
import { type Claim, shareCapacity, shareWeights } from './schedule.ts';
import { callGuest, failVm, type KernelState, nowNs, takeDigest, type Vm } from './state.ts';

/** What one tick knows: who is ready, what each wants and gets, and the guest time it measured. */
interface Tick {
  perTick: number;
  ready: Vm[];
  demands: number[];
  scheduled: Vm[];
  claims: Claim[];
  shares: Map<string, number>;
  guestNanos: number;
}

export function runTick(state: KernelState) {
  // One clock read between guest calls times both the guest before it and the kernel after it.
  const t0 = nowNs();
  const { capacity, tickMs } = state.options;
  const all = [...state.vms.values()];
  // Start each tick at another VM, so a tick cut short by slow guests (see `each`) starves nobody.
  const first = all.length ? state.counters.ticks % all.length : 0;
  const ready = all
    .slice(first)
    .concat(all.slice(0, first))
    .filter((vm) => !vm.paused);
  const n = ready.length;
  const tick: Tick = {
    perTick: (capacity * tickMs) / 1000,
    ready,
    demands: new Array<number>(n).fill(0),
    scheduled: [],
    claims: [],
    shares: new Map(),
    guestNanos: 0,
  };
  // Steps 0..n-1 ask each VM's demand, step n shares the capacity, steps n+1..2n run the VMs, and
  // when a measure is due, steps 2n+1..3n take the digests of the VMs that ran.
  state.watchdog.each(
    (measureDue(state) ? 3 : 2) * n + 1,
    (step) => {
      if (step < n) askDemand(state, tick, step);
      else if (step === n) share(tick);
      else if (step <= 2 * n) runSlice(tick, step - n - 1);
      else digestAfterRun(tick, step - 2 * n - 1);
    },
    (step, ms) => timedOut(tick, step, ms),
    state.guestBudgetMs,
  );
  for (const vm of all) vm.period.ticks++;
  state.counters.ticks++;
  state.counters.guestNanos += tick.guestNanos;
  state.counters.totalNanos += nowNs() - t0;
}

/** Whether measure is likely called before the next tick: as many ticks passed as between the last two. */
function measureDue(state: KernelState): boolean {
  const { ticks, measuredAtTick, periodTicks } = state.counters;
  return periodTicks > 0 && ticks + 1 - measuredAtTick >= periodTicks;
}

function askDemand(state: KernelState, tick: Tick, i: number) {
  const vm = tick.ready[i]!;
  const t = nowNs();
  const d = callGuest(vm, 'demand', () => vm.guest.demand(state.options.tickMs));
  let demand = d === undefined ? Math.floor(tick.perTick) : Math.max(0, d | 0);
  if (vm.capPerTick !== undefined) demand = Math.min(demand, vm.capPerTick);
  tick.demands[i] = demand;
  const spent = nowNs() - t;
  vm.period.cpuNanos += spent;
  tick.guestNanos += spent;
}

/** Shares the tick's capacity among the ready VMs that did not fail asking, weighted by target load. */
function share(tick: Tick) {
  for (let i = 0; i < tick.ready.length; i++) {
    const vm = tick.ready[i]!;
    if (vm.paused) continue;
    tick.scheduled.push(vm);
    tick.claims.push({ id: vm.id, demand: tick.demands[i]!, weight: 1 });
  }
  const weights = shareWeights(tick.scheduled.map((vm) => vm.targetLoad));
  for (let i = 0; i < tick.claims.length; i++) tick.claims[i]!.weight = weights[i]!;
  tick.shares = shareCapacity(tick.perTick, tick.claims);
}

function runSlice(tick: Tick, i: number) {
  const vm = tick.scheduled[i];
  if (!vm) return;
  const demand = tick.claims[i]!.demand;
  const share = Math.min(tick.shares.get(vm.id) ?? 0, 0x7fffffff);
  const t = nowNs();
  let used = callGuest(vm, 'run', () => vm.guest.run(share)) ?? 0;
  const spent = nowNs() - t;
  vm.ranSinceScan = vm.writesMemory || vm.tracker.pages === 0;
  used = Math.min(Math.max(0, used | 0), share);
  vm.period.cpuNanos += spent;
  tick.guestNanos += spent;
  vm.period.demanded += demand;
  vm.period.done += used;
  vm.period.steal += Math.max(0, demand - share);
  vm.lastDemand = demand;
  vm.lastShare = share;
}

function digestAfterRun(tick: Tick, i: number) {
  const vm = tick.scheduled[i];
  if (vm && !vm.error) takeDigest(vm);
}

/** The guest the watchdog stopped at `step` fails; a run that was cut may have written memory. */
function timedOut(tick: Tick, step: number, ms: number) {
  const n = tick.ready.length;
  if (step < n) failVm(tick.ready[step]!, timeoutReason('demand', ms));
  else if (step > 2 * n && tick.scheduled[step - 2 * n - 1])
    failVm(tick.scheduled[step - 2 * n - 1]!, timeoutReason('digest', ms));
  else if (step > n && tick.scheduled[step - n - 1]) {
    const vm = tick.scheduled[step - n - 1]!;
    vm.ranSinceScan = true;
    failVm(vm, timeoutReason('run', ms));
  }
}
