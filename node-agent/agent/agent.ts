// The node agent: holds the node's lease, reports its load, and keeps its kernel in step with
// what the table says the node owns. Decisions come from shared/domain/protocol.ts; every table
// write is a fenced transition, so a stale or slow agent fails instead of doing harm.
import { randomUUID } from 'node:crypto';
import { type Holding, mayRunGuests } from '../../shared/domain/protocol.ts';
import { ConditionFailed, NotFound } from '../../shared/storage/errors.ts';
import {
  getNode,
  NodeHeld,
  type NodeRecord,
  registerNode,
  releaseLease,
  renewLease,
} from '../../shared/storage/nodes.ts';
import { dropInbound, type InboundHint, listNodeWork } from '../../shared/storage/switchover.ts';
import { findVm, recordCheckpoint, type VmRecord } from '../../shared/storage/vms.ts';
import { GuestFault } from '../kernel/budget.ts';
import { UNITS_PER_CORE } from '../kernel/index.ts';
import type { Kernel } from '../kernel/types.ts';
import { Crash, type FaultHook, type FaultPoint, Fenced } from './faults.ts';
import { ForeignStart, runVmOp } from './ops.ts';
import { buildReport } from './report.ts';
import type {
  Agent,
  AgentConfig,
  AgentDeps,
  AgentStatus,
  OpContext,
  Outbound,
  PeriodDirt,
  Wake,
} from './types.ts';

export type { Agent, AgentConfig, AgentDeps } from './types.ts';

/** Everything one agent process knows; the functions below read and change it. */
interface AgentState {
  deps: AgentDeps;
  config: AgentConfig;
  self: string;
  newId: () => string;
  held: Map<string, Holding>;
  records: Map<string, VmRecord>;
  lastCheckpoint: Map<string, number>;
  outbound: Map<string, Outbound>;
  ops: Map<string, Promise<void>>;
  /** Each guest's paging in the last report period (see PeriodDirt). */
  dirt: Map<string, PeriodDirt>;
  precopied: Map<string, number>;
  /** VM items watched for a switchover's other side (see watch). */
  watching: Set<string>;
  /** Operations started on each VM so far: a read taken before the last one began may be stale. */
  opsStarted: Map<string, number>;
  waker: (() => boolean) | undefined;
  incarnation: string;
  leaseUntil: number;
  readyAt: number;
  status: AgentStatus;
  /** Bumped whenever the node fences itself; operations started before must stop at their next step. */
  epoch: number;
}

export function createAgent(deps: AgentDeps, config: AgentConfig): Agent {
  const s: AgentState = {
    deps,
    config,
    self: config.node.id,
    newId: deps.newId ?? (() => randomUUID()),
    held: new Map(),
    records: new Map(),
    lastCheckpoint: new Map(),
    outbound: new Map(),
    ops: new Map(),
    dirt: new Map(),
    precopied: new Map(),
    watching: new Set(),
    opsStarted: new Map(),
    waker: undefined,
    incarnation: '',
    leaseUntil: 0,
    readyAt: Number.POSITIVE_INFINITY,
    status: 'new',
    epoch: 0,
  };
  return {
    nodeId: s.self,
    kernel: deps.kernel,
    get incarnation() {
      return s.incarnation;
    },
    status: () => s.status,
    register: () => register(s),
    heartbeat: (periodMs) => heartbeat(s, periodMs),
    reconcile: () => reconcile(s),
    idle: () => idle(s),
    tick: () => tick(s),
    shutdown: () => shutdown(s),
    crash: () => crash(s),
    holdings: () => s.held,
    setWaker: (waker) => {
      s.waker = waker;
    },
  };
}

const alive = (s: AgentState) =>
  s.status !== 'crashed' && s.status !== 'superseded' && s.status !== 'stopped';
const leaseOk = (s: AgentState, now: number) => mayRunGuests(s.leaseUntil, now, s.config.lease);

/** Calls the fault hook at a point; a Crash it throws kills this agent. */
async function fault(s: AgentState, point: FaultPoint, ctx: Omit<Parameters<FaultHook>[1], 'node'>) {
  if (s.status === 'crashed') throw new Crash(point);
  if (!s.deps.faults) return undefined;
  try {
    return await s.deps.faults(point, { node: s.self, ...ctx });
  } catch (error) {
    if (error instanceof Crash) crash(s);
    throw error;
  }
}

/** Self-fencing: stop every guest; operations under the old epoch stop at their next step. */
function fenceAll(s: AgentState, why: string) {
  s.epoch += 1;
  if (s.held.size)
    s.deps.log.warn({ node: s.self, vms: [...s.held.keys()], why }, 'fencing: stopping all guests');
  // a guest still loading for an operation in flight is not held yet, and must not run on either
  for (const id of new Set([...s.held.keys(), ...s.ops.keys()])) s.deps.kernel.stop(id);
  s.held.clear();
  s.outbound.clear();
  s.precopied.clear();
}

function crash(s: AgentState) {
  if (s.status === 'crashed') return;
  s.status = 'crashed';
  s.epoch += 1;
}

function supersede(s: AgentState, by: string | undefined) {
  s.status = 'superseded';
  s.deps.log.error({ node: s.self, by }, 'another agent process holds this node; stopping');
}

async function register(s: AgentState) {
  const { clients, clock, log } = s.deps;
  await fault(s, 'register', { phase: 'before' });
  let previous: NodeRecord | undefined;
  try {
    previous = await getNode(clients, s.self);
  } catch (error) {
    if (!(error instanceof NotFound)) throw error;
  }
  const mine = s.incarnation;
  const next = s.newId();
  const now = clock();
  // Conditional: refused (NodeHeld) while another process's lease on this node id is live.
  const record = await registerNode(clients, {
    spec: s.config.node,
    incarnation: next,
    now,
    leaseMs: s.config.lease.leaseMs,
    ...(mine ? { replaces: mine } : {}),
    ...(s.deps.holder ? { holder: s.deps.holder } : {}),
  });
  s.incarnation = next;
  s.leaseUntil = record.leaseUntil;
  // Another process held this node until previous.leaseUntil and fences itself by then; act only after.
  s.readyAt =
    previous && previous.incarnation !== mine && previous.leaseUntil >= now ? previous.leaseUntil : now;
  s.status = s.readyAt > now ? 'waiting' : 'ready';
  log.info(
    { node: s.self, incarnation: s.incarnation, leaseUntil: s.leaseUntil, readyAt: s.readyAt },
    'registered',
  );
  await fault(s, 'register', { phase: 'after' });
}

/** The period's load report; a kernel that cannot measure costs the report's VM lines, never the renewal. */
function loadReport(s: AgentState, periodMs: number) {
  let measurements: ReturnType<Kernel['measure']> = [];
  try {
    measurements = s.deps.kernel.measure();
  } catch (error) {
    s.deps.log.error(
      { node: s.self, err: (error as Error).message },
      'measuring failed; renewing the lease without VM lines',
    );
  }
  s.dirt = new Map(
    measurements.map((m) => [
      m.id,
      { dirtiedPages: m.dirtiedPages, residentPages: m.residentPages, periodMs },
    ]),
  );
  return buildReport({
    now: s.deps.clock(),
    measurements,
    records: s.records,
    held: s.held,
    busy: new Set(s.ops.keys()),
    capacity: s.config.node.capacity,
    periodMs,
    loadPerWorkUnit: (s.config.node.weights.cpu ?? 1) / UNITS_PER_CORE,
  });
}

async function heartbeat(s: AgentState, periodMs: number) {
  if (!alive(s)) return;
  if (s.status === 'new') return register(s);
  const report = loadReport(s, periodMs);
  const before = s.epoch;
  await fault(s, 'renew', { phase: 'before' });
  const { clients, clock } = s.deps;
  try {
    const record = await renewLease(clients, {
      id: s.self,
      incarnation: s.incarnation,
      now: clock(),
      leaseMs: s.config.lease.leaseMs,
      report,
    });
    if (!alive(s)) return;
    s.leaseUntil = Math.max(s.leaseUntil, record.leaseUntil);
    if (s.status === 'fenced' && before === s.epoch) s.status = 'ready';
    if (s.status === 'waiting' && clock() >= s.readyAt) s.status = 'ready';
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    await onLeaseLost(s);
  }
}

/** The renewal was refused: fence, then stop for good (another live process) or re-register. */
async function onLeaseLost(s: AgentState) {
  const node = await getNode(s.deps.clients, s.self).catch(() => undefined);
  fenceAll(s, 'lease lost');
  if (node && node.incarnation !== s.incarnation && node.leaseUntil >= s.deps.clock())
    return supersede(s, node.incarnation);
  s.status = 'fenced';
  s.deps.log.warn(
    { node: s.self, incarnation: s.incarnation },
    'lease lapsed; re-registering under a new incarnation',
  );
  try {
    await register(s);
  } catch (error) {
    if (!(error instanceof NodeHeld)) throw error;
    supersede(s, error.node.incarnation);
  }
}

/** One protocol step of an operation started under `epoch`, between its two fault points. */
async function step<T>(
  s: AgentState,
  epoch: number,
  point: FaultPoint,
  vm: string,
  fn: () => Promise<T> | T,
  describe?: (out: T) => Parameters<FaultHook>[1]['image'],
): Promise<T> {
  const check = () => {
    if (s.status === 'crashed') throw new Crash(point);
    if (s.epoch !== epoch) throw new Fenced();
  };
  check();
  await fault(s, point, { phase: 'before', vm });
  check();
  let out = await fn();
  const image = describe?.(out);
  const again = await fault(s, point, { phase: 'after', vm, ...(image ? { image } : {}) });
  if (again === 'repeat') {
    check();
    out = await fn();
  }
  check();
  return out;
}

function opContext(s: AgentState, woke?: Wake): OpContext {
  // Operations started under this epoch stop at their next step once the node fences itself.
  const epoch = s.epoch;
  const { clients, kernel, clock, log, images } = s.deps;
  return {
    self: s.self,
    incarnation: s.incarnation,
    clients,
    kernel,
    clock,
    log,
    config: s.config,
    held: s.held,
    records: s.records,
    lastCheckpoint: s.lastCheckpoint,
    outbound: s.outbound,
    precopied: s.precopied,
    images,
    watch: (id, seen) => watch(s, id, seen),
    wake: () => (alive(s) && s.waker ? s.waker() : false),
    dirt: (id) => s.dirt.get(id),
    ...(woke ? { woke } : {}),
    step: (point, vm, fn, describe) => step(s, epoch, point, vm, fn, describe),
  };
}

async function reconcile(s: AgentState) {
  if (!alive(s) || s.status === 'new') return;
  const now = s.deps.clock();
  if (s.status === 'waiting' && now >= s.readyAt) s.status = 'ready';
  if (s.status !== 'ready' || !leaseOk(s, now)) return;
  const { vms: listed, inbound } = await listNodeWork(s.deps.clients, s.self);
  if (!alive(s)) return;
  const ids = new Set<string>(s.held.keys());
  for (const vm of listed) {
    s.records.set(vm.id, vm);
    ids.add(vm.id);
  }
  for (const id of s.records.keys()) if (!ids.has(id)) s.records.delete(id);
  const context = opContext(s, { by: 'reconcile', at: s.deps.clock() });
  const inboundContext = { ...context, woke: { by: 'inbound' as const, at: context.clock() } };
  for (const id of ids)
    if (!s.ops.has(id))
      startOp(
        s,
        context,
        id,
        listed.find((vm) => vm.id === id),
      );
  for (const hint of inbound) {
    const mine = listed.find((vm) => vm.id === hint.vm);
    if (mine && mine.migration?.id !== hint.migration)
      void dropInbound(s.deps.clients, hint.vm, hint.migration).catch(() => undefined);
    else if (!s.ops.has(hint.vm)) startInboundOp(s, inboundContext, hint);
  }
}

/** A VM hinted to this node: act on its item (prepare, take), and drop the hint once it is no longer ours. */
function startInboundOp(s: AgentState, context: OpContext, hint: InboundHint) {
  const op = runVmOp(context, hint.vm, undefined)
    .then(async (vm) => {
      const order = vm?.migration;
      if (order?.id !== hint.migration || order.to !== s.self)
        await dropInbound(s.deps.clients, hint.vm, hint.migration);
    })
    .catch((error: unknown) => {
      if (error instanceof Crash || error instanceof Fenced) return;
      s.deps.log.warn(
        { node: s.self, vm: hint.vm, err: (error as Error).message },
        'inbound migration not prepared',
      );
    })
    .finally(() => s.ops.delete(hint.vm));
  setOp(s, hint.vm, op);
}

/** Marks `id`'s operation in flight, and counts it (see watch). */
function setOp(s: AgentState, id: string, op: Promise<void>) {
  s.ops.set(id, op);
  s.opsStarted.set(id, (s.opsStarted.get(id) ?? 0) + 1);
}

/** What a watcher compares: the parts of a VM item a switchover moves on. */
const switchoverSignature = (vm: VmRecord | undefined) =>
  vm
    ? `${vm.owner}|${vm.fence}|${vm.state}|${vm.migration?.id}|${vm.migration?.phase}|${vm.migration?.precopiedAt}|${vm.migration?.targetReadyAt}`
    : 'gone';

/**
 * A ready target reads the item WATCH_TIGHT_PAUSE_MS apart (the final delta is due, and every ms is
 * downtime) for up to WATCH_TIGHT_MS; anyone else, and the target later on, polls every
 * WATCH_SLOW_MS. For at most WATCH_MS (real time; the reconcile takes over after). Not back to
 * back: reads of the very item the source's hand-over writes held that write up (a 40 KiB write on
 * dynalite took 46-91 ms p50 against a back-to-back reader, 18-61 with 5 ms between reads, 4-40
 * alone, at load 19-20; see docs/protocol.md), and that write is downtime too.
 */
const WATCH_TIGHT_MS = 2_000;
const WATCH_TIGHT_PAUSE_MS = 5;
const WATCH_SLOW_MS = 25;
const WATCH_MS = 10_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits on one VM item for the other side of a switchover (see awaitsPeer), and starts the VM's
 * operation as soon as the item changes, with the consistent read that saw the change (no second
 * read): instead of the next reconcile's query.
 */
function watch(s: AgentState, id: string, seen: VmRecord) {
  if (s.watching.has(id) || !alive(s)) return;
  s.watching.add(id);
  const epoch = s.epoch;
  const before = switchoverSignature(seen);
  const current = () => alive(s) && s.epoch === epoch;
  const startedAt = performance.now();
  const tight = seen.migration?.to === s.self && seen.migration.targetReadyAt !== undefined;
  void (async () => {
    while (current() && performance.now() - startedAt < WATCH_MS) {
      const closely = tight && performance.now() - startedAt < WATCH_TIGHT_MS;
      await pause(closely ? WATCH_TIGHT_PAUSE_MS : WATCH_SLOW_MS);
      if (!current()) return;
      const started = s.opsStarted.get(id);
      const runningThen = s.ops.has(id);
      const read = await findVm(s.deps.clients, id);
      if (!current() || switchoverSignature(read) === before) continue;
      const woke: Wake = { by: 'watch', at: s.deps.clock() };
      const busy = s.ops.get(id);
      await busy;
      // The read may predate what an operation wrote meanwhile (the source's own hand-over, say): if
      // one was running when the read began or started since, the next operation reads anew.
      const fresh = !runningThen && busy === undefined && s.opsStarted.get(id) === started ? read : undefined;
      if (current() && !s.ops.has(id)) startOp(s, opContext(s, woke), id, undefined, fresh);
      return;
    }
  })()
    .catch(() => undefined)
    .finally(() => s.watching.delete(id));
}

/**
 * Starts one VM's operation (with `fresh`, a consistent read just taken, it skips its own first
 * read); it leaves the in-flight set when it ends, however it ends.
 */
function startOp(
  s: AgentState,
  context: OpContext,
  id: string,
  hint: VmRecord | undefined,
  fresh?: VmRecord | undefined,
) {
  const op = runVmOp(context, id, hint, fresh)
    .then(() => undefined)
    .catch(async (error: unknown) => {
      if (error instanceof Crash || error instanceof Fenced) return;
      if (error instanceof ForeignStart) return onForeignStart(s, error);
      // The guest failed under the operation (a checkpoint's digest trapped, say): the kernel
      // keeps the reason, and the next reconcile records it. The guest's fault, not the agent's.
      if (error instanceof GuestFault)
        return s.deps.log.warn(
          { node: s.self, vm: id, reason: error.reason },
          'guest failed during an operation',
        );
      s.deps.log.error({ node: s.self, vm: id, err: (error as Error).message }, 'operation failed');
    })
    .finally(() => s.ops.delete(id));
  setOp(s, id, op);
}

/** Two processes run this node id: the one that does not hold the node item's lease stops. */
async function onForeignStart(s: AgentState, error: ForeignStart) {
  const node = await getNode(s.deps.clients, s.self).catch(() => undefined);
  if (node && node.incarnation === s.incarnation) {
    // This process holds the lease; the next reconcile restarts the VM under a new fence.
    s.deps.log.warn(
      { node: s.self, vm: error.vm, by: error.by },
      'a stale process of this node id started a VM',
    );
    return;
  }
  fenceAll(s, 'another process holds this node');
  supersede(s, node?.incarnation);
}

async function idle(s: AgentState) {
  while (s.ops.size) await Promise.all([...s.ops.values()]);
}

function tick(s: AgentState) {
  if (!alive(s)) return;
  if (!leaseOk(s, s.deps.clock())) {
    if (s.held.size || s.ops.size) fenceAll(s, 'lease about to lapse');
    if (s.status === 'ready' || s.status === 'waiting') s.status = 'fenced';
    return;
  }
  s.deps.kernel.tick();
}

/** Writes a last delta of every running VM, so a restart elsewhere loses nothing. */
async function finalCheckpoints(s: AgentState) {
  const { clients, kernel, clock, log } = s.deps;
  for (const [id, holding] of s.held) {
    if (holding.paused) continue;
    try {
      kernel.pause(id);
      const result = await kernel.checkpoint(id, 'delta');
      await recordCheckpoint(clients, {
        id,
        node: s.self,
        fence: holding.fence,
        image: result.image,
        now: clock(),
      });
    } catch (error) {
      log.warn({ node: s.self, vm: id, err: (error as Error).message }, 'final checkpoint not recorded');
    }
  }
}

async function shutdown(s: AgentState) {
  if (!alive(s)) return;
  s.status = 'stopped';
  await Promise.allSettled([...s.ops.values()]);
  if (leaseOk(s, s.deps.clock())) await finalCheckpoints(s);
  fenceAll(s, 'shutdown');
  try {
    await releaseLease(s.deps.clients, s.self, s.incarnation, s.deps.clock());
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
  }
  s.deps.log.info({ node: s.self }, 'stopped; lease released');
}
