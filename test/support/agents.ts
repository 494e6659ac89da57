// Node agents in one process on a virtual clock, with real kernels over the shared dynalite and
// s3rver: what the agent, isolation and switchover integration tests drive, period by period.

import { beforeAll } from 'vitest';
import { type Agent, createAgent } from '../../node-agent/agent/agent.ts';
import { Crash, type FaultHook, type FaultPoint } from '../../node-agent/agent/faults.ts';
import { createKernel } from '../../node-agent/kernel/index.ts';
import type { Kernel } from '../../node-agent/kernel/types.ts';
import type { ProtocolTimings } from '../../shared/domain/protocol.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore, type ImageStore } from '../../shared/storage/image-store.ts';
import { createVm, getVm, type NewVm, type VmRecord } from '../../shared/storage/vms.ts';
import { orderMove } from './orders.ts';
import { freshStores } from './stores.ts';

export const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} };
/** The agents' lease: a node that misses it for longer stops its guests. */
export const AGENT_LEASE_MS = 1000;
/** The agents' protocol timings: orders and hand-overs due within 2 s, whatever the VM's size. */
export const AGENT_TIMINGS: ProtocolTimings = { orderMs: 2000, takeMs: 2000, perPageMs: 0 };

type KernelOptions = Parameters<typeof createKernel>[0];

export interface AgentOptions {
  faults?: Parameters<typeof createAgent>[0]['faults'];
  /** Kernel options beyond the node's id, capacity, weights, tick and clock. */
  kernel?: Partial<KernelOptions>;
  /** Changes the kernel before the agent gets it (to make one of its operations fail, say). */
  alterKernel?: (kernel: Kernel) => void;
  /** The agent's logger; quiet unless given. */
  log?: Parameters<typeof createAgent>[0]['log'];
  /** Protocol timings other than AGENT_TIMINGS (a source's ready wait, say). */
  timings?: ProtocolTimings;
  /** The agent's own clients instead of the rig's (to hold back or observe its storage calls). */
  clients?: Clients;
}

export interface AgentRig {
  /** Fresh stores, opened before the suite's tests. */
  clients: Clients;
  images: ImageStore;
  /** The virtual clock, in epoch ms: tests read it and move it on; `cycle` moves it too. */
  now: number;
  clock: () => number;
  /** An agent of the rig's one shape (1e9 capacity, 1,024 pages, 1 s lease, 300 ms checkpoints). */
  anAgent(id: string, options?: AgentOptions): Agent;
  /** One period per step: time passes, guests tick, heartbeats and reconciles run to completion. */
  cycle(agents: Agent[], steps?: number, stepMs?: number): Promise<void>;
  /** Registers `agents`, creates `vm` on the first of them, and cycles them `steps` periods; the VM's record then. */
  runVm(agents: Agent[], vm: Omit<NewVm, 'owner'>, steps: number): Promise<VmRecord>;
}

/** Agents on a virtual clock starting at `start`, over stores the rig opens in the suite's beforeAll. */
export function agentRig(start = 1_000_000): AgentRig {
  const anAgent = (id: string, options: AgentOptions = {}): Agent => {
    const spec = { id, capacity: 1e9, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 1024 };
    const kernel = createKernel(
      {
        nodeId: id,
        capacity: spec.capacity,
        weights: spec.weights,
        tickMs: 10,
        clock: rig.clock,
        ...options.kernel,
      },
      { images: rig.images },
    );
    options.alterKernel?.(kernel);
    return createAgent(
      {
        clients: options.clients ?? rig.clients,
        kernel,
        clock: rig.clock,
        log: options.log ?? quiet,
        images: rig.images,
        ...(options.faults ? { faults: options.faults } : {}),
      },
      {
        node: spec,
        lease: { leaseMs: AGENT_LEASE_MS, fenceMarginMs: 200 },
        checkpointMs: 300,
        cooldownMs: 5000,
        timings: options.timings ?? AGENT_TIMINGS,
      },
    );
  };

  const cycle = async (agents: Agent[], steps = 1, stepMs = 100) => {
    for (let i = 0; i < steps; i += 1) {
      rig.now += stepMs;
      for (const a of agents) a.tick();
      for (const a of agents) {
        await a.heartbeat(stepMs);
        await a.reconcile();
        await a.idle();
      }
    }
  };

  const runVm = async (agents: Agent[], vm: Omit<NewVm, 'owner'>, steps: number) => {
    for (const a of agents) await a.register();
    await createVm(rig.clients, { ...vm, owner: agents[0]!.nodeId }, rig.now);
    await cycle(agents, steps);
    return getVm(rig.clients, vm.id);
  };

  const rig = { now: start, clock: () => rig.now, anAgent, cycle, runVm } as AgentRig;
  beforeAll(async () => {
    rig.clients = await freshStores();
    rig.images = createImageStore(rig.clients);
  });
  return rig;
}

/**
 * Resolves with `probe`'s first defined answer; between tries, `between` (by default 5 ms of real
 * time, in which the agents' watchers poll). Throws 'timed out' after `ms` of real time.
 */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  ms: number,
  between: () => Promise<unknown> = () => new Promise((r) => setTimeout(r, 5)),
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await between();
  }
}

/** A fault hook that crashes its agent the first time it reaches `at`, before the step. */
export function crashOnceBefore(at: FaultPoint): FaultHook {
  let armed = true;
  return (point, ctx) => {
    if (armed && point === at && ctx.phase === 'before') {
      armed = false;
      throw new Crash(point);
    }
    return undefined;
  };
}

/**
 * Runs `vm` (16 pages of `guest`) on `from`, measured and checkpointed over four periods, then
 * orders it to `to` by hand; the VM's record before the order.
 */
export async function runAndOrder(rig: AgentRig, vm: string, guest: NewVm['guest'], from: Agent, to: Agent) {
  const record = await rig.runVm([from, to], { id: vm, guest, memPages: 16 }, 4);
  await orderMove(rig.clients, {
    vm,
    fence: record.fence,
    from: from.nodeId,
    to: to.nodeId,
    now: rig.now,
    memPages: 16,
    timings: AGENT_TIMINGS,
  });
  return record;
}
