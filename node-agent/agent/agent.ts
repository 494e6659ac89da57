// The node agent: holds the node's lease, reports its load, and keeps its kernel in step with
// what the table says the node owns. Decisions come from shared/domain/protocol.ts; every table
// write is a fenced transition, so a stale or slow agent fails instead of doing harm.
import { randomUUID } from 'node:crypto';
import {
  type Holding,
  type LeaseRules,
  mayRunGuests,
  type ProtocolTimings,
} from '../../shared/domain/protocol.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed, NotFound } from '../../shared/storage/errors.ts';
import {
  getNode,
  type LeaseHolder,
  NodeHeld,
  type NodeRecord,
  type NodeSpec,
  registerNode,
  releaseLease,
  renewLease,
} from '../../shared/storage/nodes.ts';
import { listVmsForNode, recordCheckpoint, type VmRecord } from '../../shared/storage/vms.ts';
import { GuestFault } from '../kernel/budget.ts';
import { UNITS_PER_CORE } from '../kernel/index.ts';
import type { Kernel } from '../kernel/types.ts';
import { Crash, type FaultHook, type FaultPoint, Fenced } from './faults.ts';
import { ForeignStart, type OpContext, runVmOp } from './ops.ts';
import { buildReport } from './report.ts';

/** The structured logger the agent writes to (pino satisfies it). */
export interface Log {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** Removes a deleted VM's images from the image store. */
export interface ImageCleaner {
  deleteVmImages(vmId: string): Promise<unknown>;
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
  kernel: Kernel;
  clock: () => number;
  log: Log;
  images?: ImageCleaner;
  /** This process's pid and host, recorded on the node item so a refused second agent can name it. */
  holder?: LeaseHolder;
  faults?: FaultHook;
  newId?: () => string;
}

export type AgentStatus = 'new' | 'ready' | 'waiting' | 'fenced' | 'superseded' | 'crashed' | 'stopped';

export interface Agent {
  readonly nodeId: string;
  readonly kernel: Kernel;
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
}

export function createAgent(deps: AgentDeps, config: AgentConfig): Agent {
  const { clients, kernel, clock, log } = deps;
  const self = config.node.id;
  const newId = deps.newId ?? (() => randomUUID());
  const held = new Map<string, Holding>();
  const records = new Map<string, VmRecord>();
  const lastCheckpoint = new Map<string, number>();
  const outbound = new Map<string, { stoppedAt: number; precopy: number }>();
  const ops = new Map<string, Promise<void>>();
  let incarnation = '';
  let leaseUntil = 0;
  let readyAt = Number.POSITIVE_INFINITY;
  let status: AgentStatus = 'new';
  /** Bumped whenever the node fences itself; operations started before must stop at their next step. */
  let epoch = 0;

  const alive = () => status !== 'crashed' && status !== 'superseded' && status !== 'stopped';
  const leaseOk = (now: number) => mayRunGuests(leaseUntil, now, config.lease);

  async function fault(point: FaultPoint, ctx: Omit<Parameters<FaultHook>[1], 'node'>) {
    if (status === 'crashed') throw new Crash(point);
    if (!deps.faults) return undefined;
    try {
      return await deps.faults(point, { node: self, ...ctx });
    } catch (error) {
      if (error instanceof Crash) crash();
      throw error;
    }
  }

  function fenceAll(why: string) {
    epoch += 1;
    if (held.size) log.warn({ node: self, vms: [...held.keys()], why }, 'fencing: stopping all guests');
    for (const id of held.keys()) kernel.stop(id);
    held.clear();
    outbound.clear();
  }

  function crash() {
    if (status === 'crashed') return;
    status = 'crashed';
    epoch += 1;
  }

  async function register() {
    await fault('register', { phase: 'before' });
    let previous: NodeRecord | undefined;
    try {
      previous = await getNode(clients, self);
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
    const mine = incarnation;
    const next = newId();
    const now = clock();
    // Conditional: refused (NodeHeld) while another process's lease on this node id is live.
    const record = await registerNode(clients, config.node, next, now, config.lease.leaseMs, {
      ...(mine ? { replaces: mine } : {}),
      ...(deps.holder ? { holder: deps.holder } : {}),
    });
    incarnation = next;
    leaseUntil = record.leaseUntil;
    // Another process held this node until previous.leaseUntil and fences itself by then; act only after.
    readyAt =
      previous && previous.incarnation !== mine && previous.leaseUntil >= now ? previous.leaseUntil : now;
    status = readyAt > now ? 'waiting' : 'ready';
    log.info({ node: self, incarnation, leaseUntil, readyAt }, 'registered');
    await fault('register', { phase: 'after' });
  }

  async function heartbeat(periodMs: number) {
    if (!alive()) return;
    if (status === 'new') return register();
    // The lease comes first: a kernel that cannot measure (it holds guests to their budget, but
    // still) costs the report, never the renewal.
    let measurements: ReturnType<Kernel['measure']> = [];
    try {
      measurements = kernel.measure();
    } catch (error) {
      log.error(
        { node: self, err: (error as Error).message },
        'measuring failed; renewing the lease without VM lines',
      );
    }
    const report = buildReport({
      now: clock(),
      measurements,
      records,
      held,
      busy: new Set(ops.keys()),
      capacity: config.node.capacity,
      periodMs,
      loadPerWorkUnit: (config.node.weights.cpu ?? 1) / UNITS_PER_CORE,
    });
    const before = epoch;
    await fault('renew', { phase: 'before' });
    const now = clock();
    try {
      const record = await renewLease(clients, self, incarnation, now, config.lease.leaseMs, report);
      if (!alive()) return;
      leaseUntil = Math.max(leaseUntil, record.leaseUntil);
      if (status === 'fenced' && before === epoch) status = 'ready';
      if (status === 'waiting' && clock() >= readyAt) status = 'ready';
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      const node = await getNode(clients, self).catch(() => undefined);
      fenceAll('lease lost');
      if (node && node.incarnation !== incarnation && node.leaseUntil >= clock()) {
        status = 'superseded';
        log.error({ node: self, by: node.incarnation }, 'another agent process holds this node; stopping');
        return;
      }
      status = 'fenced';
      log.warn({ node: self, incarnation }, 'lease lapsed; re-registering under a new incarnation');
      try {
        await register();
      } catch (error) {
        if (!(error instanceof NodeHeld)) throw error;
        status = 'superseded';
        log.error(
          { node: self, by: error.node.incarnation },
          'another agent process holds this node; stopping',
        );
      }
    }
  }

  function opContext(): OpContext {
    // Operations started under this epoch stop at their next step once the node fences itself.
    const start = epoch;
    return {
      self,
      incarnation,
      clients,
      kernel,
      clock,
      log,
      config,
      held,
      records,
      lastCheckpoint,
      outbound,
      images: deps.images,
      async step<T>(
        point: FaultPoint,
        vm: string,
        fn: () => Promise<T> | T,
        describe?: (out: T) => Parameters<FaultHook>[1]['image'],
      ): Promise<T> {
        const check = () => {
          if (status === 'crashed') throw new Crash(point);
          if (epoch !== start) throw new Fenced();
        };
        check();
        await fault(point, { phase: 'before', vm });
        check();
        let out = await fn();
        const image = describe?.(out);
        const again = await fault(point, { phase: 'after', vm, ...(image ? { image } : {}) });
        if (again === 'repeat') {
          check();
          out = await fn();
        }
        check();
        return out;
      },
    };
  }

  async function reconcile() {
    if (!alive() || status === 'new') return;
    const now = clock();
    if (status === 'waiting' && now >= readyAt) status = 'ready';
    if (status !== 'ready' || !leaseOk(now)) return;
    const listed = await listVmsForNode(clients, self);
    if (!alive()) return;
    const ids = new Set<string>(held.keys());
    for (const vm of listed) {
      records.set(vm.id, vm);
      ids.add(vm.id);
    }
    for (const id of records.keys()) if (!ids.has(id)) records.delete(id);
    const context = opContext();
    for (const id of ids) {
      if (ops.has(id)) continue;
      const op = runVmOp(
        context,
        id,
        listed.find((vm) => vm.id === id),
      )
        .catch(async (error: unknown) => {
          if (error instanceof Crash || error instanceof Fenced) return;
          if (error instanceof ForeignStart) return onForeignStart(error);
          // The guest failed under the operation (a checkpoint's digest trapped, say): the kernel
          // keeps the reason, and the next reconcile records it. The guest's fault, not the agent's.
          if (error instanceof GuestFault)
            return log.warn({ node: self, vm: id, reason: error.reason }, 'guest failed during an operation');
          log.error({ node: self, vm: id, err: (error as Error).message }, 'operation failed');
        })
        .finally(() => ops.delete(id));
      ops.set(id, op);
    }
  }

  /** Two processes run this node id: the one that does not hold the node item's lease stops. */
  async function onForeignStart(error: ForeignStart) {
    const node = await getNode(clients, self).catch(() => undefined);
    if (node && node.incarnation === incarnation) {
      // This process holds the lease; the next reconcile restarts the VM under a new fence.
      log.warn({ node: self, vm: error.vm, by: error.by }, 'a stale process of this node id started a VM');
      return;
    }
    fenceAll('another process holds this node');
    status = 'superseded';
    log.error({ node: self, by: node?.incarnation }, 'another agent process holds this node; stopping');
  }

  async function idle() {
    while (ops.size) await Promise.all([...ops.values()]);
  }

  function tick() {
    if (!alive()) return;
    if (!leaseOk(clock())) {
      if (held.size) fenceAll('lease about to lapse');
      if (status === 'ready' || status === 'waiting') status = 'fenced';
      return;
    }
    kernel.tick();
  }

  async function shutdown() {
    if (!alive()) return;
    status = 'stopped';
    await Promise.allSettled([...ops.values()]);
    const now = clock();
    if (leaseOk(now)) {
      for (const [id, holding] of held) {
        if (holding.paused) continue;
        try {
          kernel.pause(id);
          const result = await kernel.checkpoint(id, 'delta');
          await recordCheckpoint(clients, id, self, holding.fence, result.image, undefined, clock());
        } catch (error) {
          log.warn({ node: self, vm: id, err: (error as Error).message }, 'final checkpoint not recorded');
        }
      }
    }
    fenceAll('shutdown');
    try {
      await releaseLease(clients, self, incarnation, clock());
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
    log.info({ node: self }, 'stopped; lease released');
  }

  return {
    nodeId: self,
    kernel,
    get incarnation() {
      return incarnation;
    },
    status: () => status,
    register,
    heartbeat,
    reconcile,
    idle,
    tick,
    shutdown,
    crash,
    holdings: () => held,
  };
}
