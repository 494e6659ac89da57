// The fault harness: real agents (real kernels running real wasm guests, real DynamoDB and S3
// APIs through dynalite and s3rver) in one process, driven round by round on a virtual clock,
// while a seeded schedule kills, freezes and repeats protocol steps of sources, targets and
// balancers. After every schedule the invariants are checked; a failure names its seed.
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { runBalancer } from '../../functions/balancer/run.ts';
import { runReaper } from '../../functions/reaper/reaper.ts';
import { type Agent, createAgent } from '../../node-agent/agent/agent.ts';
import { Crash, type FaultContext, type FaultPoint } from '../../node-agent/agent/faults.ts';
import { createKernel } from '../../node-agent/kernel/index.ts';
import { isLive } from '../../shared/domain/placement.ts';
import { orderDeadline, type ProtocolTimings, sameRun } from '../../shared/domain/protocol.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { BalancingConfig, Rng } from '../../shared/domain/types.ts';
import type { MigrationOrder } from '../../shared/domain/vm-state.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { patchBalancingConfig } from '../../shared/storage/config-store.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import {
  createImageStore,
  createImageStoreOn,
  type ImageStore,
  s3Blobs,
} from '../../shared/storage/image-store.ts';
import { nodeKey, vmKey } from '../../shared/storage/keys.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import {
  claimNode,
  getNode,
  NodeHeld,
  type NodeSpec,
  patchNode,
  releaseClaim,
} from '../../shared/storage/nodes.ts';
import { putLearning } from '../../shared/storage/runs.ts';
import { inlineImageOf } from '../../shared/storage/switchover.ts';
import {
  createVm,
  findVm,
  type GuestSpec,
  orderMigration,
  requestState,
  resumeVm,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import {
  expectedReason,
  HOSTILE_DELAYS,
  HOSTILE_KINDS,
  type HostileKind,
  hostileModule,
  registerHostileModules,
} from './hostile-guests.ts';
import { SIGHTS, StaleReads, type StaleRule } from './stale-reads.ts';
import { Tracker } from './tracker.ts';

/** Virtual timings: one round is one kernel tick of `stepMs`. */
export const TIMING = {
  tickMs: 10,
  stepMs: 10,
  leaseMs: 120,
  fenceMarginMs: 20,
  graceMs: 20,
  heartbeatEvery: 4,
  reconcileEvery: 2,
  reaperEvery: 4,
  sampleEvery: 3,
  checkpointMs: 100,
  claimMs: 200,
  timings: { orderMs: 60, takeMs: 60, perPageMs: 0 } satisfies ProtocolTimings,
};

const GUEST: GuestSpec = { kind: 'memory', params: { wsPages: 2, rate: 2000 } };
/**
 * The guest budget of the harness's kernels. A wall-time budget counts time the process was
 * preempted, and the soak runs many lanes in one process on a shared machine: at a load average
 * of 30 an ordinary guest's tick was once cut off after the default 500 ms. 1.5 s keeps ordinary
 * guests clear of that while a hostile guest still fails within 3 s.
 */
const GUEST_BUDGET_MS = 1500;
const MEM_PAGES = 3;

const SOURCE_POINTS: FaultPoint[] = [
  'precopy',
  'announce',
  'pause',
  'finalDelta',
  'markImageReady',
  'publishInline',
  'stopSource',
];
const TARGET_POINTS: FaultPoint[] = [
  'prepareTarget',
  'targetReady',
  'loadTarget',
  'takeOwnership',
  'resumeTarget',
  'history',
  'publishInline',
  'dropInline',
  'markRunning',
];
const ANY_POINTS: FaultPoint[] = [
  'checkpoint',
  'recordCheckpoint',
  'renew',
  'recover',
  'start',
  'abort',
  'settle',
];
const BALANCER_POINTS = ['claim', 'order', 'release'] as const;
type BalancerPoint = (typeof BALANCER_POINTS)[number];
const ACCEPTING: FaultPoint[] = ['recordCheckpoint', 'announce', 'markImageReady', 'markSuspended'];

type FaultAction = { kind: 'crash' } | { kind: 'freeze'; rounds: number } | { kind: 'repeat' };

interface ArmedFault {
  node: string;
  point: FaultPoint;
  phase: 'before' | 'after';
  action: FaultAction;
  /** Fire on this (1-based) hit of the point. */
  hit: number;
  hits: number;
  fired: boolean;
}

interface SimNode {
  id: string;
  /** The node id, or the id with `~twin` for a second process of the same node id. */
  label: string;
  spec: NodeSpec;
  skew: number;
  agent: Agent;
  kernel: ReturnType<Tracker['wrap']>;
  dead: boolean;
  frozen: boolean;
  thaw?: () => void;
  thawAt?: number;
  frozenSignal: Promise<void>;
  signalFrozen: () => void;
  heartbeat?: Promise<void>;
  lastHeartbeat: number;
  /** Its round's reconcile, while a stale read holds it up past the round (stale-read schedules). */
  working?: Promise<void>;
}

/** A lane: one table and bucket, one virtual clock, schedules run one after another. */
export interface Lane {
  clients: Clients;
  images: ImageStore;
  now: number;
}

export function createLane(clients: Clients): Lane {
  return { clients, images: createImageStore(clients), now: 1_700_000_000_000 };
}

export interface ScheduleResult {
  seed: number;
  scenario: string;
  faults: string[];
  violations: string[];
  rounds: number;
  migrations: { completed: number; aborted: number; settled: number };
  errors: string[];
  /** Swaps ordered (two orders of one exchange, one each way). */
  swaps: number;
  /** Real balancer runs that ordered a spill (one source giving to several targets in one run). */
  spills: number;
  /** Real balancer runs in which a node gives in one exchange and takes from a third node in another. */
  givesAndTakes: number;
  /** Violations by what they mean: a VM lost (item or work), doubled (two runs), or anything else. */
  lost: number;
  doubled: number;
  /** Stale answers given (held back or replayed) in a stale-read schedule. */
  staleReads: number;
}

/** Agent log errors a schedule may produce: each names a condition the protocol handles. */
const EXPECTED_ERRORS = [
  // A second incarnation of a node id found the node held (NodeHeld), or lost it to one: it stops.
  /another agent process holds this node; stopping/,
  /is held by a live agent/,
];

/** Sorts a violation into lost, doubled or other. */
export function violationKind(v: string): 'lost' | 'doubled' | 'other' {
  if (/is lost|work lost|behind its newest accepted image|no node|has no run of it/.test(v)) return 'lost';
  if (/fork|same instant|runs on .*,|forked/.test(v)) return 'doubled';
  return 'other';
}

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng.next() * items.length)]!;
const chance = (rng: Rng, p: number) => rng.next() < p;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));

class Schedule {
  readonly rng: Rng;
  readonly prefix: string;
  readonly tracker: Tracker;
  readonly nodes = new Map<string, SimNode>();
  readonly vms: string[] = [];
  readonly armed: ArmedFault[] = [];
  readonly notes: string[] = [];
  readonly errors: string[] = [];
  readonly background: Promise<unknown>[] = [];
  suspended = new Set<string>();
  readonly orders = new Set<string>();
  pending = 0;
  readonly restartAt = new Map<string, number>();
  round = 0;
  injecting = true;
  /** Second agent processes for a node id, keyed by node id. */
  readonly twins = new Map<string, SimNode>();
  /** The reaper runs every round alongside the agents, not after them. */
  concurrentReaper = false;
  private reaping: Promise<unknown> | undefined;
  /** Refusals of a second process for a live node id (NodeHeld), counted, not errors. */
  refused = 0;
  /** Quiescing: every agent reconciles every round. */
  settling = false;
  /** Hostile VMs (id → kind and memory cap): they must end FAILED with their reason, on no kernel. */
  readonly hostile = new Map<string, { kind: HostileKind; memPages: number }>();
  /** Nodes the schedule killed, froze, restarted or doubled: the others must keep their lease at every sample. */
  readonly disturbed = new Set<string>();
  /** Check at every sample that undisturbed nodes stay live (hostile schedules). */
  checkLeases = false;
  /** Swaps the schedule ordered (two orders of one exchange, one each way). */
  swaps = 0;
  /** Real balancer runs that spilled: one source ordered to several targets by one run. */
  spills = 0;
  /** Real balancer runs in which a node gives and also takes from a node other than its partner. */
  givesAndTakes = 0;
  private restarts = 0;
  /** Stale reads (the `stale-read` kind): each reader's reads may come back old. */
  stale: StaleReads | undefined;
  /**
   * The protocol's deadlines. Some stale-read schedules give orders and hand-overs longer ones (150
   * ms, 15 rounds, against 6), so that a held read can come back while its order is still current.
   */
  timings: ProtocolTimings = TIMING.timings;
  /** No protocol-step faults: only the stale reads (some stale-read schedules). */
  faultFree = false;
  /** The fence each VM was handed over at (IMAGE_READY), by hand-overs in flight and done. */
  private readonly handing = new Map<string, number>();
  private readonly handedAt = new Map<string, { fence: number; by: SimNode }>();

  constructor(
    readonly lane: Lane,
    readonly seed: number,
  ) {
    this.rng = createRng(seed);
    this.prefix = `s${seed}-${Math.floor(lane.now % 1e6)}`;
    this.tracker = new Tracker(() => lane.now);
  }

  node(id: string) {
    const n = this.nodes.get(`${this.prefix}-${id}`);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  addNode(id: string, skew: number) {
    const full = `${this.prefix}-${id}`;
    const spec: NodeSpec = {
      id: full,
      capacity: 1e9,
      weights: { cpu: 1, io: 0.2, mem: 0.1 },
      memCapacityPages: 4096,
    };
    this.nodes.set(full, this.boot(spec, skew));
  }

  /** Starts a second agent process for node `id` (another incarnation), alongside the first. */
  addTwin(id: string, skew: number) {
    const first = this.node(id);
    this.disturbed.add(first.id);
    this.notes.push(`r${this.round} twin ${short(first.id)}`);
    this.twins.set(first.id, this.boot(first.spec, skew, `${first.id}~twin`));
  }

  private boot(spec: NodeSpec, skew: number, label = spec.id): SimNode {
    const clock = () => this.lane.now + skew;
    const inner = createKernel(
      {
        nodeId: spec.id,
        capacity: spec.capacity,
        weights: spec.weights,
        tickMs: TIMING.tickMs,
        clock,
        guestBudgetMs: GUEST_BUDGET_MS,
      },
      { images: this.lane.images },
    );
    const kernel = this.tracker.wrap(label, inner);
    const frozen = deferred();
    const sim: SimNode = {
      id: spec.id,
      label,
      spec,
      skew,
      kernel,
      dead: false,
      frozen: false,
      frozenSignal: frozen.promise,
      signalFrozen: frozen.resolve,
      lastHeartbeat: -1,
      agent: undefined as unknown as Agent,
    };
    const errors = this.errors;
    // SEESAW_FAULT_TRACE=1: every agent log line joins the schedule's steps (to read a failure by).
    const quiet = process.env.SEESAW_FAULT_TRACE
      ? (obj: object, msg?: string) =>
          this.notes.push(`r${this.round} log ${short(label)}: ${msg} ${JSON.stringify(obj)}`)
      : () => {};
    sim.agent = createAgent(
      {
        clients: this.clientsFor(label),
        kernel,
        clock,
        images: this.lane.images,
        log: {
          info: quiet,
          debug: quiet,
          warn: quiet,
          error: (obj: object, msg?: string) => errors.push(`${label}: ${msg} ${JSON.stringify(obj)}`),
        },
        faults: (point, ctx) => this.onPoint(sim, point, ctx),
        newId: () => `${label}-inc${++this.restarts}`,
      },
      {
        node: spec,
        lease: { leaseMs: TIMING.leaseMs, fenceMarginMs: TIMING.fenceMarginMs },
        checkpointMs: TIMING.checkpointMs,
        cooldownMs: 0,
        timings: this.timings,
      },
    );
    return sim;
  }

  kill(sim: SimNode, why: string) {
    if (sim.dead) return;
    this.notes.push(`r${this.round} kill ${short(sim.id)} (${why})`);
    this.disturbed.add(sim.id);
    sim.dead = true;
    sim.kernel.dead = true;
    sim.agent.crash();
    sim.thaw?.();
    // Half the killed nodes come back while faults are still armed, as a new incarnation.
    if (this.injecting && chance(this.rng, 0.5))
      this.restartAt.set(sim.id, this.round + int(this.rng, 2, 15));
  }

  restart(sim: SimNode) {
    this.notes.push(`r${this.round} restart ${short(sim.id)}`);
    this.nodes.set(sim.id, this.boot(sim.spec, sim.skew));
  }

  freeze(sim: SimNode, rounds: number): Promise<void> {
    const gate = deferred();
    this.disturbed.add(sim.id);
    sim.frozen = true;
    sim.thawAt = this.round + rounds;
    sim.thaw = () => {
      sim.frozen = false;
      sim.thaw = undefined;
      const next = deferred();
      sim.frozenSignal = next.promise;
      sim.signalFrozen = next.resolve;
      gate.resolve();
    };
    sim.signalFrozen();
    return gate.promise;
  }

  /** A reader's clients: stale in a stale-read schedule, the lane's own otherwise. */
  clientsFor(reader: string): Clients {
    return this.stale?.clientsFor(reader) ?? this.lane.clients;
  }

  private async onPoint(sim: SimNode, point: FaultPoint, ctx: FaultContext): Promise<undefined | 'repeat'> {
    if (ctx.phase === 'after' && ctx.image && ctx.vm && ACCEPTING.includes(point))
      this.tracker.accept(ctx.vm, ctx.image);
    if (ctx.vm && (point === 'markImageReady' || point === 'recover'))
      await this.checkHandOver(sim, point, ctx);
    if (sim.dead) throw new Crash(point);
    if (!this.injecting || sim.label !== sim.id) return undefined;
    for (const f of this.armed) {
      if (f.fired || f.node !== sim.id || f.point !== point || f.phase !== ctx.phase) continue;
      f.hits += 1;
      if (f.hits < f.hit) continue;
      f.fired = true;
      this.notes.push(`r${this.round} ${f.action.kind} ${short(sim.id)} at ${point}:${ctx.phase}`);
      if (f.action.kind === 'crash') {
        this.kill(sim, `fault at ${point}`);
        throw new Crash(point);
      }
      if (f.action.kind === 'repeat') return 'repeat';
      await this.freeze(sim, f.action.rounds);
      if (sim.dead) throw new Crash(point);
    }
    return undefined;
  }

  /**
   * A VM handed over (IMAGE_READY) is taken by its target or settled once its deadline passed, never
   * restarted by its source (step 3: the source forgets it). A source process that decides to
   * (`recover`, from a read older than its own hand-over) acted on a stale read, whether or not the
   * table then refuses the restart; one whose restart lands has dropped the migration. The
   * hand-over's fence is read before its write (the write needs that very fence).
   */
  private async checkHandOver(sim: SimNode, point: FaultPoint, ctx: FaultContext) {
    const vm = ctx.vm!;
    const key = `${sim.label}|${vm}`;
    const read = () => findVm(this.lane.clients, vm).catch(() => undefined);
    const handed = this.handedAt.get(vm);
    if (point === 'markImageReady' && ctx.phase === 'before') {
      const f = (await read())?.fence;
      if (f !== undefined) this.handing.set(key, f);
    } else if (point === 'markImageReady' && this.handing.has(key)) {
      this.handedAt.set(vm, { fence: this.handing.get(key)!, by: sim });
    } else if (point === 'recover' && ctx.phase === 'before' && handed?.by === sim) {
      const now = await read();
      if (now?.fence === handed.fence && now.migration?.phase === 'IMAGE_READY')
        this.tracker.violation(
          `${short(vm)}: ${short(sim.label)} decided to restart it (recover) from a read older than its own hand-over at fence ${handed.fence}`,
        );
    } else if (point === 'recover' && ctx.phase === 'after' && handed) {
      // restartOwn moved the fence by one from the fence it acted under.
      if ((await read())?.fence === handed.fence + 1)
        this.tracker.violation(
          `${short(vm)}: ${short(sim.label)} restarted it (recover) after it was handed over at fence ${handed.fence}: the migration was dropped`,
        );
    }
  }

  arm(node: string, point: FaultPoint, action: FaultAction, phase?: 'before' | 'after') {
    if (this.faultFree) return;
    this.pin(node, point, action, phase ?? (chance(this.rng, 0.5) ? 'before' : 'after'));
  }

  /** Arms a fault even in a fault-free schedule (a pinned example's own faults). */
  pin(node: string, point: FaultPoint, action: FaultAction, phase: 'before' | 'after') {
    this.armed.push({ node, point, phase, action, hit: 1, hits: 0, fired: false });
  }

  randomAction(): FaultAction {
    const r = this.rng.next();
    if (r < 0.4) return { kind: 'crash' };
    if (r < 0.75) return { kind: 'freeze', rounds: pick(this.rng, [1, 4, 8, 16]) };
    return { kind: 'repeat' };
  }

  /** A balancer run's fault point: false when the run is killed there; a pause waits its rounds out. */
  private balancerPoint<P extends string>(
    run: string,
    fault?: { at: P; action: 'kill' | 'pause'; rounds: number },
  ) {
    return async (at: P) => {
      if (fault?.at !== at) return true;
      this.notes.push(`r${this.round} balancer ${run} ${fault.action} at ${at}`);
      if (fault.action === 'kill') return false;
      const until = this.round + fault.rounds;
      while (this.round < until && this.injecting) await new Promise((r) => setTimeout(r, 1));
      return true;
    };
  }

  /** Claims both nodes for a run, as the balancer does; the claim's end, or undefined when lost. */
  private async claimPair(run: string, a: string, b: string): Promise<number | undefined> {
    const { clients } = this.lane;
    const claimedAt = this.lane.now;
    const until = claimedAt + TIMING.claimMs;
    try {
      await claimNode(clients, { id: a, run, now: claimedAt, until });
      await claimNode(clients, { id: b, run, now: claimedAt, until });
      return until;
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      this.notes.push(`r${this.round} balancer ${run} lost the claim`);
      await releaseClaim(clients, a, run).catch(() => undefined);
      return undefined;
    }
  }

  /** A balancer run ordering `vm` from `from` to `to`, with its own fault. */
  async balance(
    run: string,
    vm: string,
    from: string,
    to: string,
    fault?: { at: BalancerPoint; action: 'kill' | 'pause'; rounds: number },
    twice = false,
  ) {
    const { clients } = this.lane;
    const point = this.balancerPoint(run, fault);
    if (!(await point('claim'))) return;
    const until = await this.claimPair(run, from, to);
    if (until === undefined) return;
    const record = await findVm(clients, vm);
    const busy = await this.inFlightNodes();
    if (!(await point('order'))) return;
    const now = this.lane.now;
    const ok =
      record?.owner === from &&
      record.state === 'RUNNING' &&
      !record.migration &&
      !busy.has(from) &&
      !busy.has(to) &&
      now < until - this.timings.orderMs;
    if (ok) {
      const order = {
        id: `${run}-${vm}`,
        from,
        to,
        phase: 'ORDERED' as const,
        deadline: orderDeadline(now, MEM_PAGES, this.timings),
        orderedAt: now,
        origin: run,
      };
      for (let i = 0; i < (twice ? 2 : 1); i += 1) {
        try {
          this.orders.add(order.id);
          await orderMigration(clients, vm, record.fence, order);
          this.notes.push(
            `r${this.round} ${run} ordered ${short(vm)} ${short(from)}→${short(to)}${i ? ' (again)' : ''}`,
          );
        } catch (error) {
          if (!(error instanceof ConditionFailed)) throw error;
        }
      }
    }
    if (!(await point('release'))) return;
    await releaseClaim(clients, from, run).catch(() => undefined);
    await releaseClaim(clients, to, run).catch(() => undefined);
  }

  /** Launches a hostile VM on `owner`: a registered module that turns hostile after `after` runs. */
  async addHostile(kind: HostileKind, after: number, owner: SimNode) {
    const { clients, images } = this.lane;
    await registerHostileModules(images);
    const id = `${this.prefix}-h${this.hostile.size + 1}`;
    const memPages = MEM_PAGES;
    this.vms.push(id);
    this.hostile.set(id, { kind, memPages });
    this.tracker.addUntracked(id);
    await createVm(
      clients,
      { id, owner: owner.id, guest: { kind: `module:${hostileModule(kind, after)}` }, memPages },
      this.lane.now,
    );
    this.notes.push(
      `r${this.round} hostile ${short(id)} ${kind}${after ? ` after ${after}` : ''} on ${short(owner.id)}`,
    );
    return id;
  }

  /**
   * A balancer run that swaps `give` (on `a`) for `take` (on `b`): claims both nodes, then writes two
   * orders under one origin, one each way, as the real balancer does for a swap (one exchange, two
   * fenced migrations). `fault` kills or pauses the run at a point, as in `balance`.
   */
  async swap(
    run: string,
    give: string,
    take: string,
    a: string,
    b: string,
    fault?: { at: BalancerPoint | 'between'; action: 'kill' | 'pause'; rounds: number },
  ) {
    const { clients } = this.lane;
    const point = this.balancerPoint(run, fault);
    if (!(await point('claim'))) return;
    const until = await this.claimPair(run, a, b);
    if (until === undefined) return;
    const [out, back] = await Promise.all([findVm(clients, give), findVm(clients, take)]);
    const busy = await this.inFlightNodes();
    if (!(await point('order'))) return;
    const now = this.lane.now;
    const ready = (vm: VmRecord | undefined, owner: string) =>
      vm?.owner === owner && vm.state === 'RUNNING' && !vm.migration;
    if (
      ready(out, a) &&
      ready(back, b) &&
      !busy.has(a) &&
      !busy.has(b) &&
      now < until - this.timings.orderMs
    ) {
      const order = (vm: string, from: string, to: string): MigrationOrder => ({
        id: `${run}-${vm}`,
        from,
        to,
        phase: 'ORDERED',
        deadline: orderDeadline(now, MEM_PAGES, this.timings),
        orderedAt: now,
        origin: run,
      });
      this.swaps += 1;
      for (const [i, [vm, record, from, to]] of (
        [
          [give, out!, a, b],
          [take, back!, b, a],
        ] as const
      ).entries()) {
        if (i === 1 && !(await point('between'))) return;
        const o = order(vm, from, to);
        try {
          this.orders.add(o.id);
          await orderMigration(clients, vm, record.fence, o);
          this.notes.push(`r${this.round} ${run} swap-ordered ${short(vm)} ${short(from)}→${short(to)}`);
        } catch (error) {
          if (!(error instanceof ConditionFailed)) throw error;
        }
      }
    }
    if (!(await point('release'))) return;
    await releaseClaim(clients, a, run).catch(() => undefined);
    await releaseClaim(clients, b, run).catch(() => undefined);
  }

  /** Every agent process of the schedule, second processes of a node id included. */
  sims() {
    return [...this.nodes.values(), ...this.twins.values()];
  }

  /** Keeps, of each node id with two processes, the one the node item names; the other is killed. */
  async resolveTwins() {
    for (const [id, twin] of this.twins) {
      const first = this.nodes.get(id)!;
      const item = await getNode(this.lane.clients, id).catch(() => undefined);
      const keep = item && !twin.dead && item.incarnation === twin.agent.incarnation ? twin : first;
      const drop = keep === twin ? first : twin;
      this.notes.push(
        `r${this.round} twins of ${short(id)}: ${keep === twin ? 'second' : 'first'} holds the node`,
      );
      drop.dead = true;
      drop.kernel.dead = true;
      drop.agent.crash();
      drop.thaw?.();
      if (drop.agent.holdings().size) for (const vm of drop.agent.holdings().keys()) drop.kernel.stop(vm);
      this.nodes.set(id, keep);
      this.twins.delete(id);
      this.retired.push(drop);
    }
  }

  /** Processes taken out of the schedule (the losing twin): still checked for running nothing. */
  readonly retired: SimNode[] = [];

  /**
   * The real balancer (functions/balancer/run.ts) in place of the harness's order writer. With
   * `dieAfter`, the run's process dies after that many writes: nothing it sends later reaches the
   * store, so its claims are left to lapse and its orders written so far stand.
   */
  async realBalance(label: string, dieAfter?: number) {
    if (dieAfter !== undefined) {
      await runBalancer(this.balancerDeps(this.dyingClients(label, dieAfter)), this.balancerOptions()).catch(
        (error: unknown) => {
          if (!(error instanceof RunDied)) throw error;
        },
      );
      return;
    }
    const record = await runBalancer(this.balancerDeps(this.clientsFor('balancer')), this.balancerOptions());
    const written = record.orders.filter((o) => o.outcome === 'written');
    for (const o of written) {
      this.orders.add(o.migration);
      const swap = written.some((p) => p.from === o.to && p.to === o.from);
      this.notes.push(
        `r${this.round} ${label} ${swap ? 'swap-ordered' : 'ordered'} ${short(o.vm)} ${short(o.from)}→${short(o.to)}`,
      );
    }
    if (written.some((o) => written.some((p) => p.from === o.to && p.to === o.from))) this.swaps += 1;
    this.countSpill(written);
    if (!record.orders.some((o) => o.outcome === 'written'))
      this.notes.push(
        `r${this.round} idle-run ${label} (${[...Object.keys(record.reasons), ...record.skipped.map((k) => k.reason)].join(', ') || 'no pairs'}; cv ${record.before.cv.toFixed(2)})`,
      );
  }

  private balancerDeps(clients: Clients) {
    return {
      clients,
      clock: () => this.lane.now,
      rng: createRng(this.seed * 31 + this.round),
      log: { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never,
    };
  }

  private balancerOptions() {
    return { roundMs: 1000, claimTtlMs: TIMING.claimMs, orderDeadlineMs: this.timings.orderMs };
  }

  /** A spill: one run ordered VMs from one source to several targets. Also counts a node that gives and takes. */
  private countSpill(written: readonly { from: string; to: string }[]) {
    if (written.some((o) => written.some((p) => p.to === o.from && p.from !== o.to))) this.givesAndTakes += 1;
    const targets = new Map<string, Set<string>>();
    for (const o of written) targets.set(o.from, (targets.get(o.from) ?? new Set()).add(o.to));
    if ([...targets.values()].some((t) => t.size > 1)) this.spills += 1;
  }

  /** The lane's clients for a run whose process dies after `writes` writes; its orders until then are noted. */
  private dyingClients(label: string, writes: number): Clients {
    const clients = this.clientsFor('balancer');
    const inner = clients.doc;
    const doc = Object.create(inner) as Clients['doc'];
    const written: MigrationOrder[] = [];
    let sent = 0;
    const send = async (command: { input: Record<string, unknown> }) => {
      const { input } = command;
      const write = 'UpdateExpression' in input || 'Item' in input;
      if (write && sent >= writes) {
        if (sent++ === writes) {
          this.notes.push(`r${this.round} balancer ${label} kill at write ${writes}`);
          this.countSpill(written);
        }
        throw new RunDied();
      }
      if (write) sent += 1;
      const out = await inner.send(command as never);
      const order = (input.ExpressionAttributeValues as Record<string, unknown> | undefined)?.[':m'];
      if (String(input.UpdateExpression).startsWith('SET migration') && order) {
        const o = order as MigrationOrder;
        written.push(o);
        this.orders.add(o.id);
        const vm = String((input.Key as { pk: string }).pk).replace('VM#', '');
        this.notes.push(`r${this.round} ${label} ordered ${short(vm)} ${short(o.from)}→${short(o.to)}`);
      }
      return out;
    };
    Object.defineProperty(doc, 'send', { value: send });
    return { ...clients, doc };
  }

  /** A learning item as a previous run of the shard would leave it, expecting the loads reported now (no noise). */
  async rememberLoads() {
    const expected: Record<string, number> = {};
    for (const id of this.nodes.keys()) {
      const report = (await getNode(this.lane.clients, id)).report;
      if (report) expected[id] = report.total;
    }
    await putLearning(
      this.lane.clients,
      {
        run: `${this.prefix}-before`,
        at: this.lane.now,
        round: 0,
        shard: 0,
        cv: 0,
        exchanges: [],
        evaluated: [],
        penalties: [],
        expected,
      },
      60_000,
    );
  }

  /** No node frozen, no balancer run still going, no stale answer held back. */
  quiet() {
    return (
      this.pending === 0 &&
      this.restartAt.size === 0 &&
      [...this.nodes.values()].every((n) => !n.frozen) &&
      (this.stale?.heldCount() ?? 0) === 0
    );
  }

  track(run: Promise<unknown>) {
    this.pending += 1;
    this.background.push(run.finally(() => (this.pending -= 1)));
  }

  async inFlightNodes() {
    const busy = new Set<string>();
    for (const vm of await this.readVms()) {
      if (!vm?.migration) continue;
      busy.add(vm.migration.from);
      busy.add(vm.migration.to);
    }
    return busy;
  }

  readVms() {
    return Promise.all(this.vms.map((id) => findVm(this.lane.clients, id)));
  }

  /** One round: advance the clock, tick every running node, heartbeats, reconciles, reaper. */
  async step(stepMs = TIMING.stepMs) {
    this.round += 1;
    this.lane.now += stepMs;
    for (const [id, round] of this.restartAt) {
      const sim = this.nodes.get(id);
      if (round > this.round || !sim) continue;
      this.restartAt.delete(id);
      if (sim.dead) this.restart(sim);
    }
    for (const sim of this.nodes.values())
      if (sim.frozen && sim.thawAt !== undefined && this.round >= sim.thawAt) sim.thaw?.();
    await this.stale?.tick();
    const active = [...this.nodes.values(), ...this.twins.values()].filter((n) => !n.dead && !n.frozen);
    for (const sim of active) sim.agent.tick();
    await Promise.all(
      active.map((sim, i) => {
        const reconcile = this.settling || (this.round + i) % TIMING.reconcileEvery === 0;
        const failed = (error: unknown) => {
          if (error instanceof NodeHeld) this.refused += 1;
          else if (!(error instanceof Crash)) this.errors.push(`${sim.label}: ${(error as Error).message}`);
        };
        const beat = () => {
          if (!sim.heartbeat && this.round - sim.lastHeartbeat >= TIMING.heartbeatEvery) {
            sim.lastHeartbeat = this.round;
            sim.heartbeat = sim.agent.heartbeat(TIMING.stepMs * TIMING.heartbeatEvery).finally(() => {
              sim.heartbeat = undefined;
            });
          }
          return sim.heartbeat;
        };
        // A stale read holds the node's work up: the round goes on without it (the process's
        // timers would), and its reconcile waits until that work is over; its lease is still renewed.
        const heldUp = this.stale ? [this.stale.whenHeld(sim.label)] : [];
        if (sim.working)
          return Promise.race([Promise.resolve(beat()).catch(failed), sim.frozenSignal, ...heldUp]);
        const work = (async () => {
          await beat();
          if (!reconcile) return;
          await sim.agent.reconcile();
          await sim.agent.idle();
        })().catch(failed);
        if (this.stale) {
          sim.working = work;
          void work.finally(() => {
            if (sim.working === work) sim.working = undefined;
          });
        }
        return Promise.race([work, sim.frozenSignal, ...heldUp]);
      }),
    );
    const prefix = `${this.prefix}-`;
    const reap = () =>
      runReaper(
        {
          clients: this.clientsFor('reaper'),
          clock: () => this.lane.now,
          log: { info: () => {}, warn: () => {} },
        },
        { graceMs: TIMING.graceMs, shard: (id) => id.startsWith(prefix) },
      );
    if (this.concurrentReaper) {
      // Started beside the agents' work and not awaited: its reads go stale while agents act.
      if (!this.reaping) {
        this.reaping = reap()
          .catch((error: unknown) => this.errors.push(`reaper: ${(error as Error).message}`))
          .finally(() => {
            this.reaping = undefined;
          });
        this.background.push(this.reaping);
      }
    } else if (this.round % TIMING.reaperEvery === 0) await reap();
    if (this.round % TIMING.sampleEvery === 0) await this.sample();
  }

  /** Invariants that must hold at every instant: each VM exists, has one owner among the nodes, and no node has orders of two runs. */
  async sample() {
    const records = await this.readVms();
    // A node's orders from one run are one booking of it (a swap, a spill, a drain, giving while taking).
    const exchanges = new Map<string, MigrationOrder[]>();
    for (const [i, vm] of records.entries()) {
      const id = this.vms[i]!;
      if (!vm) {
        this.tracker.violation(`${id} is lost: its item is gone`);
        continue;
      }
      if (!this.nodes.has(vm.owner)) this.tracker.violation(`${id} is owned by unknown node ${vm.owner}`);
      const m = vm.migration;
      if (m) for (const n of [m.from, m.to]) exchanges.set(n, [...(exchanges.get(n) ?? []), m]);
    }
    for (const [n, orders] of exchanges)
      for (const [i, o] of orders.entries())
        for (const p of orders.slice(i + 1))
          if (!sameRun(o, p))
            this.tracker.violation(
              `${short(n)} is booked by two runs at once: ${o.origin} ${short(o.from)}→${short(o.to)} and ${p.origin} ${short(p.from)}→${short(p.to)}`,
            );
    // Hostile guests never take a node down: a node the schedule left alone keeps its lease live.
    if (this.checkLeases)
      for (const sim of this.nodes.values()) {
        if (sim.dead || this.disturbed.has(sim.id) || sim.agent.status() !== 'ready') continue;
        const item = await getNode(this.lane.clients, sim.id).catch(() => undefined);
        if (item && !isLive(item, this.lane.now))
          this.tracker.violation(
            `${short(sim.id)} lost its lease (ends ${item.leaseUntil}) while hosting ${[...sim.agent.holdings().keys()].map(short).join(',') || 'nothing'}`,
          );
      }
  }

  /** True when every VM runs (or stays suspended) exactly where the table says, under its fence. */
  async stable(): Promise<boolean> {
    // A balancer run still going (one paused at a fault point goes on once faults stop) may yet order.
    if (this.pending > 0) return false;
    // Cheap check first: each VM held, unpaused, by exactly one live node (or by none if suspended).
    for (const id of this.vms) {
      const holders = this.sims().filter((n) => !n.dead && n.agent.holdings().has(id));
      if (this.hostile.has(id)) {
        if (holders.length) return false;
        continue;
      }
      if (
        this.suspended.has(id)
          ? holders.length
          : holders.length !== 1 || holders[0]!.agent.holdings().get(id)!.paused
      )
        return false;
    }
    const records = await this.readVms();
    return records.every((vm) => vm !== undefined && this.settledOn(vm));
  }

  private settledOn(vm: VmRecord): boolean {
    if (vm.migration) return false;
    const holders = this.sims().filter((n) => !n.dead && n.agent.holdings().has(vm.id));
    if (this.hostile.has(vm.id)) return vm.state === 'FAILED' && holders.length === 0;
    if (this.suspended.has(vm.id)) return vm.state === 'SUSPENDED' && holders.length === 0;
    if (vm.state !== 'RUNNING') return false;
    const owner = this.nodes.get(vm.owner);
    if (!owner || owner.dead || owner.frozen || owner.agent.status() !== 'ready') return false;
    const held = owner.agent.holdings().get(vm.id);
    return holders.length === 1 && held !== undefined && held.fence === vm.fence && !held.paused;
  }

  /** Final checks once stable: one kernel runs each VM and its digest is the reference digest for its ticks of life. */
  async finalChecks() {
    const records = await this.readVms();
    for (const vm of records) {
      if (!vm || this.suspended.has(vm.id)) continue;
      const hostile = this.hostile.get(vm.id);
      if (hostile) {
        // A hostile VM ends FAILED with its own reason, and no kernel runs it any more.
        const reason = expectedReason(hostile.kind, hostile.memPages);
        if (vm.state !== 'FAILED' || !reason.test(vm.reason ?? ''))
          this.tracker.violation(
            `hostile ${vm.id} (${hostile.kind}) ended ${vm.state}${vm.reason ? ` (${vm.reason})` : ''}, not FAILED with ${reason}`,
          );
        const running = [...this.sims(), ...this.retired].filter(
          (n) => !n.dead && n.kernel.running().includes(vm.id),
        );
        if (running.length)
          this.tracker.violation(
            `hostile ${vm.id} still runs on ${running.map((n) => short(n.id)).join(',')}`,
          );
        continue;
      }
      const owner = this.nodes.get(vm.owner)!;
      const running = [...this.sims(), ...this.retired].filter(
        (n) => !n.dead && n.kernel.running().includes(vm.id),
      );
      if (running.length !== 1 || running[0] !== owner)
        this.tracker.violation(
          `${vm.id} runs on ${running.map((n) => short(n.id)).join(',') || 'no node'}, owner ${short(vm.owner)}`,
        );
      const pos = owner.kernel.position(vm.id);
      if (pos === undefined) {
        this.tracker.violation(`${vm.id}: its owner's kernel has no run of it`);
        continue;
      }
      if (pos < this.tracker.acceptedPos(vm.id))
        this.tracker.violation(`${vm.id} is behind its newest accepted image`);
      if (owner.kernel.digest(vm.id) !== this.tracker.ref(vm.id).at(pos))
        this.tracker.violation(
          `${vm.id}: digest after ${pos} ticks differs from the reference (forked or skipped)`,
        );
      await this.checkDurable(vm);
    }
  }

  /**
   * Never lost: the VM's recorded image loads whole, every checksum verified, from what is durable
   * (S3, and a final delta the item still carries), as a node restarting it would load it.
   */
  private async checkDurable(vm: VmRecord) {
    if (!vm.image) return;
    const inline = inlineImageOf(vm).held;
    const s3 = s3Blobs(this.lane.clients);
    const durable = createImageStoreOn({
      ...s3,
      get: async (key) => (key === inline?.key ? { body: inline.body, metadata: {} } : s3.get(key)),
    });
    try {
      await durable.getImage(vm.image.manifest);
    } catch (error) {
      this.tracker.violation(
        `${vm.id} is lost: its image ${vm.image.manifest} does not load (${(error as Error).message})`,
      );
    }
  }

  async cleanup() {
    this.stale?.releaseAll();
    for (const sim of this.sims()) {
      sim.dead = true;
      sim.kernel.dead = true;
      sim.agent.crash();
      sim.thaw?.();
    }
    await Promise.allSettled(this.background);
    const { clients } = this.lane;
    const del = (Key: Record<string, string>) =>
      clients.doc.send(new DeleteCommand({ TableName: clients.tableName, Key }));
    await Promise.all([
      ...[...this.nodes.keys()].map((id) => del(nodeKey(id))),
      ...this.vms.map((id) => del(vmKey(id))),
    ]);
    // Keep the lane's clock far past this schedule's leases, so its leftovers never look alive.
    this.lane.now += 60_000;
  }

  async migrationCounts() {
    const counts = { completed: 0, aborted: 0, settled: 0 };
    const records = await Promise.all([...this.orders].map((id) => getMigration(this.lane.clients, id)));
    for (const m of records) if (m) counts[m.outcome] += 1;
    return counts;
  }
}

const short = (id: string) => id.split('-').pop() ?? id;

/** A balancer run's process died (the schedule's fault): every later send of it fails. */
class RunDied extends Error {
  override readonly name = 'RunDied';
}

export const SCENARIOS = [
  'source-fault',
  'target-fault',
  'two-balancers',
  'order-twice',
  'balancer-fault',
  'slow-lease',
  'kill-any',
  'suspend-resume',
  'twin-agent',
  'reaper-race',
  'real-balancer',
  'clock-skew',
  'hostile',
  'hostile-race',
  'swap',
  'real-swap',
  'real-spill',
  'real-give-take',
  'stale-read',
] as const;
export type ScheduleKind = (typeof SCENARIOS)[number];

/**
 * What a `stale-read` schedule plays out beneath its stale reads: a migration with a source or
 * target fault (every phase), a lease lapsing, kills, suspend and resume, twin processes, the
 * reaper, the real balancer's moves, swaps, spills and a drain.
 */
const STALE_PLOTS = [
  'source-fault',
  'target-fault',
  'order-twice',
  'slow-lease',
  'kill-any',
  'suspend-resume',
  'twin-agent',
  'reaper-race',
  'real-balancer',
  'swap',
  'real-spill',
  'real-give-take',
] as const satisfies readonly ScheduleKind[];

/** Deadlines long enough for a held read to come back while its order is current (see Schedule.timings). */
const STALE_TIMINGS: ProtocolTimings = { ...TIMING.timings, orderMs: 150, takeMs: 150 };

/** A stale rule of a pinned example: its reader by node letter, its rounds counted from the plot's start. */
export type PinnedRule = Omit<StaleRule, 'reader'> & { reader: 'a' | 'b' | 'c' | 'reaper' | 'balancer' };

/** A pinned stale-read schedule: the plot, its stale rules, and its protocol faults (no random ones). */
export interface StaleExample {
  plot: (typeof STALE_PLOTS)[number];
  rules: PinnedRule[];
  /** Orders and hand-overs due in 150 ms instead of 60 (see Schedule.timings). */
  longDeadlines?: boolean;
  faults?: { node: 'a' | 'b' | 'c'; point: FaultPoint; action: FaultAction; phase: 'before' | 'after' }[];
}

/** A random stale rule for one of `readers`, acting from round `at` on. */
function randomStaleRule(rng: Rng, readers: readonly string[], at: number): StaleRule {
  const from = at + int(rng, 0, 6);
  const replay = chance(rng, 0.3);
  return {
    reader: pick(rng, readers),
    // The phases of a migration twice as often: most decisions a stale read can mislead are there.
    sees: pick(rng, [...SIGHTS, 'ordered', 'precopied', 'target-ready', 'image-ready'] as const),
    // Only an index query (eventually consistent) may be answered from before it was sent.
    reads: replay ? 'query' : pick(rng, ['get', 'watch', 'query', 'any'] as const),
    mode: replay ? 'replay' : 'hold',
    release: pick(rng, ['write', 'soon', 'round'] as const),
    p: pick(rng, [0.5, 1]),
    from,
    to: from + int(rng, 15, 40),
    maxRounds: pick(rng, [1, 3, 8, 20]),
    times: pick(rng, [3, 10, 30]),
  };
}

/** Parses a comma-separated list of schedule kinds (all of them when empty). */
export function parseKinds(list: string | undefined): readonly ScheduleKind[] {
  if (!list) return SCENARIOS;
  const kinds = list.split(',').map((k) => k.trim());
  const bad = kinds.filter((k) => !(SCENARIOS as readonly string[]).includes(k));
  if (bad.length)
    throw new Error(`unknown schedule kind(s) ${bad.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  return kinds as ScheduleKind[];
}

/** Runs one seeded schedule on a lane and checks the invariants; never throws for a violation. */
export async function runSchedule(
  lane: Lane,
  seed: number,
  kinds: readonly ScheduleKind[] = SCENARIOS,
  example?: StaleExample,
): Promise<ScheduleResult> {
  const s = new Schedule(lane, seed);
  const { rng } = s;
  const kind = example ? 'stale-read' : pick(rng, kinds);
  // A stale-read schedule plays out another kind's plot with its readers' reads made stale.
  const scenario: Exclude<ScheduleKind, 'stale-read'> =
    kind !== 'stale-read' ? kind : (example?.plot ?? pick(rng, STALE_PLOTS));
  if (kind === 'stale-read') {
    s.stale = new StaleReads(
      lane.clients,
      () => s.round,
      createRng(seed * 7919 + 1),
      (what) => s.notes.push(`r${s.round} stale ${what}`),
    );
    s.notes.push(`r0 stale-read plot ${scenario}`);
    s.faultFree = example !== undefined || chance(rng, 0.4);
    if (example?.longDeadlines ?? chance(rng, 0.5)) s.timings = STALE_TIMINGS;
  }
  // Clock skew: a few ms everywhere; in `clock-skew`, up to the fence margin between two nodes.
  const skewMax = scenario === 'clock-skew' ? TIMING.fenceMarginMs / 2 : 5;
  const skew = () => int(rng, -skewMax, skewMax);
  // A third node only where the scenario needs one: every node costs table traffic each round.
  // The real balancer's swap needs a pair with no third node to give to.
  const spill = scenario === 'real-spill';
  const giveTake = scenario === 'real-give-take';
  const three =
    scenario !== 'real-swap' &&
    !spill &&
    (giveTake ||
      scenario === 'two-balancers' ||
      scenario === 'kill-any' ||
      scenario === 'suspend-resume' ||
      scenario === 'hostile' ||
      scenario === 'hostile-race' ||
      chance(rng, 0.3));
  // A spill needs a giver, its partner and two idle nodes to spill to.
  for (const id of spill ? ['a', 'b', 'c', 'd'] : three ? ['a', 'b', 'c'] : ['a', 'b']) s.addNode(id, skew());
  const [a, b] = [s.node('a'), s.node('b')];
  const c = three || spill ? s.node('c') : b;
  const vmCount = chance(rng, 0.5) || scenario === 'real-balancer' || scenario === 'swap' ? 2 : 1;
  // The real balancer needs an imbalance to act on: both VMs start on one node.
  const homes = scenario === 'real-balancer' ? [a, a] : [a, b];
  // For `real-swap`, loads that only a swap improves: a holds 3 + 3, b holds 2 + 2 (cpu guests, in
  // thousands of work units a second). Moving a 3 raises the pair's maximum; swapping a 3 for a 2
  // makes it 5 / 5.
  // For `real-spill`, four VMs of 1 on a and nothing elsewhere: a gives to its partner, and (the
  // round after one that saw no noise) spills to the two idle nodes, three exchanges in one run.
  // For `real-give-take`, a holds 5 + 5, b 3 + 3 and the draining c a 1: a and b swap a 5 for a 3,
  // and c drains to whichever the swap leaves less loaded, which so gives in one exchange of the run
  // and takes in another.
  const rates: readonly (readonly [SimNode, number])[] | undefined = giveTake
    ? [
        [a, 5000],
        [a, 5000],
        [b, 3000],
        [b, 3000],
        [c, 1000],
      ]
    : scenario === 'real-swap'
      ? [
          [a, 3000],
          [a, 3000],
          [b, 2000],
          [b, 2000],
        ]
      : undefined;
  const plan = spill
    ? Array.from({ length: 4 }, () => ({
        home: a,
        guest: { kind: 'cpu', params: { rate: 1000 } } as GuestSpec,
      }))
    : rates
      ? rates.map(([home, rate]) => ({ home, guest: { kind: 'cpu', params: { rate } } as GuestSpec }))
      : Array.from({ length: vmCount }, (_, i) => ({ home: homes[i]!, guest: GUEST }));
  for (const [i, { home, guest }] of plan.entries()) {
    const id = `${s.prefix}-v${i + 1}`;
    s.vms.push(id);
    await s.tracker.addVm(id, guest, MEM_PAGES, TIMING.tickMs);
    await createVm(lane.clients, { id, owner: home.id, guest, memPages: MEM_PAGES }, lane.now);
  }
  let result: ScheduleResult | undefined;
  try {
    // Warm up: every VM running on its home node, with a checkpoint or two behind it.
    for (let i = 0; i < 30 && (i < 4 || !(await s.stable())); i += 1) await s.step();
    const v1 = s.vms[0]!;
    const at = s.round + int(rng, 0, 3);
    if (s.stale) armStale(s, rng, at, scenario, example);
    const waitUntil = async (round: number) => {
      while (s.round < round) await s.step();
    };
    /** The real runBalancer over `nodes`, maybe with a fault armed on one; a second run races it with chance `race`. */
    const realBalancing = async (nodes: SimNode[], config: Partial<BalancingConfig>, race: number) => {
      if (chance(rng, 0.6))
        s.arm(pick(rng, nodes).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
      // The harness's guests are light: any clear difference is worth an exchange.
      await patchBalancingConfig(
        lane.clients,
        { margin: 0, thresholdFactor: 1.1, trigger: 'difference', ...config },
        lane.now,
      );
      // Every node has sent a load report by then (the first heartbeat only registers).
      await waitUntil(at + 2 * TIMING.heartbeatEvery + 1);
      s.track(s.realBalance('run1'));
      // Sometimes a second run races the first (another shard's schedule firing late).
      if (chance(rng, race)) s.track(s.realBalance('run2'));
      if (chance(rng, 0.3)) s.concurrentReaper = true;
    };
    switch (scenario) {
      case 'source-fault':
      case 'target-fault': {
        const points = scenario === 'source-fault' ? SOURCE_POINTS : TARGET_POINTS;
        const victim = scenario === 'source-fault' ? a : b;
        s.arm(victim.id, pick(rng, points), s.randomAction());
        if (chance(rng, 0.3))
          s.arm(pick(rng, [a, b]).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
        await waitUntil(at);
        s.track(s.balance('bal1', v1, a.id, b.id));
        break;
      }
      case 'two-balancers': {
        await waitUntil(at);
        s.track(s.balance('bal1', v1, a.id, b.id));
        s.track(s.balance('bal2', v1, a.id, c.id));
        if (s.vms[1]) s.track(s.balance('bal3', s.vms[1], b.id, c.id));
        if (chance(rng, 0.5))
          s.arm(pick(rng, [a, b, c]).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
        break;
      }
      case 'order-twice': {
        if (chance(rng, 0.5))
          s.arm(pick(rng, [a, b]).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), { kind: 'repeat' });
        await waitUntil(at);
        s.track(s.balance('bal1', v1, a.id, b.id, undefined, true));
        break;
      }
      case 'balancer-fault': {
        await waitUntil(at);
        const fault = {
          at: pick(rng, BALANCER_POINTS),
          action: pick(rng, ['kill', 'pause'] as const),
          rounds: pick(rng, [2, 10, 25]),
        };
        s.track(s.balance('bal1', v1, a.id, b.id, fault));
        await waitUntil(s.round + 2);
        s.track(s.balance('bal2', v1, a.id, c.id));
        break;
      }
      case 'slow-lease': {
        // The node is only slow: its renewal stalls past the lease; the reaper moves its VMs on.
        const victim = pick(rng, [a, b]);
        s.arm(victim.id, 'renew', { kind: 'freeze', rounds: int(rng, 10, 20) }, 'before');
        if (chance(rng, 0.5)) {
          await waitUntil(at);
          s.track(s.balance('bal1', v1, a.id, b.id));
        }
        break;
      }
      case 'kill-any': {
        s.arm(
          pick(rng, [a, b, c]).id,
          pick(rng, [...ANY_POINTS, ...SOURCE_POINTS, ...TARGET_POINTS]),
          s.randomAction(),
        );
        await waitUntil(at);
        s.track(s.balance('bal1', v1, a.id, pick(rng, [b, c]).id));
        await waitUntil(s.round + int(rng, 0, 6));
        if (chance(rng, 0.5)) s.kill(pick(rng, [a, b, c]), 'random kill');
        break;
      }
      case 'twin-agent': {
        // A second process for node a: refused while a's lease is live; takes over if a stalls.
        await waitUntil(at);
        s.addTwin('a', skew());
        if (chance(rng, 0.6)) s.arm(a.id, 'renew', { kind: 'freeze', rounds: int(rng, 14, 24) }, 'before');
        if (chance(rng, 0.5)) s.track(s.balance('bal1', v1, a.id, b.id));
        break;
      }
      case 'reaper-race': {
        // The reaper runs every round beside the agents while a node stalls or dies and comes back.
        s.concurrentReaper = true;
        await waitUntil(at);
        const victim = pick(rng, [a, b]);
        if (chance(rng, 0.5))
          s.arm(victim.id, 'renew', { kind: 'freeze', rounds: int(rng, 10, 20) }, 'before');
        else s.kill(victim, 'reaper race');
        if (chance(rng, 0.5)) s.track(s.balance('bal1', v1, a.id, b.id));
        break;
      }
      case 'real-balancer': {
        await realBalancing([a, b, c], {}, 0.5);
        break;
      }
      case 'clock-skew': {
        // Nodes' clocks differ by up to the fence margin while leases lapse and VMs move.
        const victim = pick(rng, [a, b, c]);
        if (chance(rng, 0.5))
          s.arm(victim.id, 'renew', { kind: 'freeze', rounds: int(rng, 10, 20) }, 'before');
        else
          s.arm(victim.id, pick(rng, [...ANY_POINTS, ...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
        await waitUntil(at);
        s.track(s.balance('bal1', v1, a.id, pick(rng, [b, c]).id));
        break;
      }
      case 'hostile': {
        // Hostile guests (hostile at once) land among the ordinary VMs while agents race a migration
        // and the reaper; every node must stay live and each hostile VM end FAILED with its reason.
        s.checkLeases = true;
        const kinds = HOSTILE_KINDS.filter(() => chance(rng, 0.6));
        for (const kind of kinds.length ? kinds : [pick(rng, HOSTILE_KINDS)])
          await s.addHostile(kind, 0, pick(rng, [a, b, c]));
        if (chance(rng, 0.5)) s.concurrentReaper = true;
        await waitUntil(at);
        if (chance(rng, 0.7)) s.track(s.balance('bal1', v1, a.id, pick(rng, [b, c]).id));
        break;
      }
      case 'hostile-race': {
        // Hostile guests that turn only after some runs: they are ordered to migrate, their node is
        // killed (the reaper moves the poison on), and protocol steps fault, all before or as they turn.
        s.checkLeases = true;
        const hostile: string[] = [];
        for (let i = int(rng, 1, 3); i > 0; i -= 1)
          hostile.push(
            await s.addHostile(pick(rng, HOSTILE_KINDS), pick(rng, HOSTILE_DELAYS), pick(rng, [a, b, c])),
          );
        if (chance(rng, 0.5)) s.concurrentReaper = true;
        if (chance(rng, 0.5))
          s.arm(
            pick(rng, [a, b, c]).id,
            pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS, 'fail', 'start'] as FaultPoint[]),
            s.randomAction(),
          );
        // Let the hostile VMs start before they are moved.
        await waitUntil(at + 4);
        const h = pick(rng, hostile);
        const record = await findVm(lane.clients, h);
        if (record && chance(rng, 0.7)) {
          const to = pick(
            rng,
            [a, b, c].filter((n) => n.id !== record.owner),
          );
          if (to) s.track(s.balance('balh', h, record.owner, to.id));
        }
        if (chance(rng, 0.5)) s.track(s.balance('bal1', v1, a.id, pick(rng, [b, c]).id));
        await waitUntil(s.round + int(rng, 0, 6));
        if (chance(rng, 0.4)) {
          const owner = (await findVm(lane.clients, pick(rng, hostile)))?.owner;
          const victim = [a, b, c].find((n) => n.id === owner);
          if (victim) s.kill(victim, 'hosts a hostile VM');
        }
        break;
      }
      case 'swap': {
        // The protocol's swap: two fenced migrations, one each way, ordered by one run (one exchange),
        // with a fault at a source or target step, the run itself faulted, or a second run racing.
        if (chance(rng, 0.7))
          s.arm(pick(rng, [a, b]).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
        if (chance(rng, 0.2))
          s.arm(pick(rng, [a, b]).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
        if (chance(rng, 0.3)) s.concurrentReaper = true;
        await waitUntil(at);
        const fault = chance(rng, 0.3)
          ? {
              at: pick(rng, [...BALANCER_POINTS, 'between'] as const),
              action: pick(rng, ['kill', 'pause'] as const),
              rounds: pick(rng, [2, 10, 25]),
            }
          : undefined;
        s.track(s.swap('swap1', v1, s.vms[1]!, a.id, b.id, fault));
        if (chance(rng, 0.3)) s.track(s.balance('bal2', v1, a.id, c.id));
        break;
      }
      case 'real-swap': {
        // The real runBalancer finds no single move that helps and swaps a 3 for a 2.
        await realBalancing([a, b], { multiVm: true }, 0.3);
        break;
      }
      case 'real-give-take': {
        // One run makes a node the source of one exchange (the swap) and the target of another (the
        // drain): it carries out both, under the same faults and racing runs as the other real kinds.
        await patchNode(lane.clients, c.id, { draining: true }, lane.now);
        await realBalancing([a, b, c], { multiVm: true }, 0.3);
        break;
      }
      case 'real-spill': {
        // One run, one giver in several exchanges: faults at a protocol step, a second run racing,
        // or the run's process dying after a few writes (its claims lapse, its orders stand).
        if (chance(rng, 0.5))
          s.arm(pick(rng, [a, b, c]).id, pick(rng, [...SOURCE_POINTS, ...TARGET_POINTS]), s.randomAction());
        await patchBalancingConfig(
          lane.clients,
          { margin: 0, thresholdFactor: 1.1, trigger: 'difference', multiVm: true },
          lane.now,
        );
        await waitUntil(at + 2 * TIMING.heartbeatEvery + 1);
        await s.rememberLoads();
        // Four claims (the giver once), then up to three orders: death comes among the claims or the orders.
        s.track(s.realBalance('run1', chance(rng, 0.3) ? int(rng, 2, 7) : undefined));
        if (chance(rng, 0.3)) s.track(s.realBalance('run2'));
        if (chance(rng, 0.3)) s.concurrentReaper = true;
        break;
      }
      case 'suspend-resume': {
        await waitUntil(at);
        const vm = await findVm(lane.clients, v1);
        if (vm) {
          s.arm(
            a.id,
            pick(rng, ['suspend', 'checkpoint', 'markSuspended'] as FaultPoint[]),
            s.randomAction(),
          );
          await requestState(lane.clients, {
            id: v1,
            fence: vm.fence,
            want: 'SUSPENDING',
            now: lane.now,
          }).catch(() => undefined);
          // Stale reads may hold the owner's suspend up for up to 20 rounds.
          for (let i = 0; i < (s.stale ? 60 : 30); i += 1) {
            await s.step();
            const now = await findVm(lane.clients, v1);
            if (now?.state === 'SUSPENDED') {
              if (chance(rng, 0.8))
                await resumeVm(lane.clients, {
                  id: v1,
                  fence: now.fence,
                  node: pick(rng, [b, c]).id,
                  now: lane.now,
                });
              else s.suspended.add(v1);
              break;
            }
          }
        }
        break;
      }
    }
    // Let the schedule play out with faults armed, ending early once nothing is left to happen.
    for (let i = 0; i < 16; i += 1) {
      await s.step();
      if (i >= 3 && s.quiet() && (i >= 8 || s.armed.every((f) => f.fired)) && (await s.stable())) break;
    }
    // Quiesce: no more faults, frozen nodes thaw, most dead nodes come back.
    s.injecting = false;
    s.stale?.releaseAll();
    s.restartAt.clear();
    await s.resolveTwins();
    for (const sim of s.nodes.values()) sim.thaw?.();
    const dead = [...s.nodes.values()].filter((n) => n.dead);
    const restart = dead.filter((_, i) =>
      i === 0 && dead.length === s.nodes.size ? true : chance(rng, 0.6),
    );
    for (const sim of restart) s.restart(sim);
    s.settling = true;
    let stableFor = 0;
    for (let i = 0; i < 150 && stableFor < 2; i += 1) {
      await s.step(i < 40 ? TIMING.stepMs : 30);
      stableFor = (await s.stable()) ? stableFor + 1 : 0;
    }
    if (stableFor < 2) {
      const vms = await s.readVms();
      s.tracker.violation(
        `did not settle: ${vms.map((v) => (v ? `${short(v.id)} ${v.state}${v.reason ? ` (${v.reason})` : ''} on ${short(v.owner)} f${v.fence}${v.migration ? ` ${v.migration.phase}→${short(v.migration.to)}` : ''}` : 'gone')).join('; ')}; nodes ${[...s.nodes.values()].map((n) => `${short(n.id)}:${n.dead ? 'dead' : n.agent.status()}[${[...n.agent.holdings().entries()].map(([k, h]) => `${short(k)}f${h.fence}${h.paused ? 'p' : ''}`).join(',')}]`).join(' ')}`,
      );
    }
    for (let i = 0; i < 2; i += 1) await s.step();
    await s.sample();
    await s.finalChecks();
    // Agent errors are part of the verdict: only the ones the protocol expects are allowed.
    for (const e of s.errors)
      if (!EXPECTED_ERRORS.some((re) => re.test(e))) s.tracker.violation(`unexpected agent error: ${e}`);
    result = {
      seed,
      scenario: kind,
      faults: s.notes,
      violations: s.tracker.violations,
      rounds: s.round,
      migrations: await s.migrationCounts(),
      errors: s.errors,
      swaps: s.swaps,
      spills: s.spills,
      givesAndTakes: s.givesAndTakes,
      lost: s.tracker.violations.filter((v) => violationKind(v) === 'lost').length,
      doubled: s.tracker.violations.filter((v) => violationKind(v) === 'doubled').length,
      staleReads: s.stale?.answered ?? 0,
    };
  } finally {
    await s.cleanup();
  }
  return result;
}

/**
 * Arms a stale-read schedule's stale reads (from round `at`): a pinned example's, or one to three
 * random rules over the nodes' agents, the reaper and (when the plot runs it) the real balancer.
 */
function armStale(s: Schedule, rng: Rng, at: number, plot: ScheduleKind, example?: StaleExample) {
  const stale = s.stale!;
  const letter = (reader: PinnedRule['reader']) =>
    reader === 'reaper' || reader === 'balancer' ? reader : s.node(reader).label;
  if (example) {
    for (const rule of example.rules)
      stale.arm({ ...rule, reader: letter(rule.reader), from: at + rule.from, to: at + rule.to });
    for (const f of example.faults ?? []) s.pin(s.node(f.node).id, f.point, f.action, f.phase);
  } else {
    // The first two nodes are the ones most plots move VMs between: twice as likely.
    const readers = [...s.nodes.values()].map((n) => n.label);
    readers.push(s.node('a').label, s.node('b').label, 'reaper');
    if (plot.startsWith('real-')) readers.push('balancer');
    if (plot === 'twin-agent') readers.push(`${s.node('a').id}~twin`);
    for (let i = int(rng, 3, 5); i > 0; i -= 1) stale.arm(randomStaleRule(rng, readers, at));
  }
  // The reaper's held reads must not hold up the round: it runs beside the agents.
  if (stale.readers().has('reaper')) s.concurrentReaper = true;
  s.notes.push(
    ...stale.rules.map(
      (r) =>
        `r${s.round} stale-rule ${r.reader.split('-').pop()} ${r.mode} ${r.reads} seeing ${r.sees} p${r.p} r${r.from}-${r.to} ≤${r.maxRounds} ×${r.times} release ${r.release}`,
    ),
  );
}

/** Counts a batch's injected events by kind (crash, freeze, repeat, kill, restart, balancer faults, orders). */
export function eventCounts(results: ScheduleResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results)
    for (const note of r.faults) {
      const words = note.split(' ');
      const kind =
        words[1] === 'balancer'
          ? `balancer-${words[3]}`
          : words[2] === 'ordered'
            ? 'order'
            : words[2] === 'swap-ordered'
              ? 'swap-order'
              : (words[1] ?? '?');
      counts[kind] = (counts[kind] ?? 0) + 1;
    }
  return counts;
}

/** Per schedule kind: schedules run, failed (any violation), and VMs lost or doubled. */
export function countsByScenario(
  results: ScheduleResult[],
): Map<string, { run: number; failed: number; lost: number; doubled: number }> {
  const by = new Map<string, { run: number; failed: number; lost: number; doubled: number }>();
  for (const r of results) {
    const c = by.get(r.scenario) ?? { run: 0, failed: 0, lost: 0, doubled: 0 };
    c.run += 1;
    if (r.violations.length) c.failed += 1;
    c.lost += r.lost;
    c.doubled += r.doubled;
    by.set(r.scenario, c);
  }
  return new Map([...by].sort(([a], [b]) => a.localeCompare(b)));
}

/** One line per schedule kind: `kind: run N, failed N, lost N, doubled N`. */
export function scenarioTable(results: ScheduleResult[]): string[] {
  return [...countsByScenario(results)].map(
    ([k, c]) => `  ${k.padEnd(15)} run ${c.run}, failed ${c.failed}, lost ${c.lost}, doubled ${c.doubled}`,
  );
}

/** A batch in a few lines: schedules by kind, its table, the events injected by kind, and the moves they led to. */
export function batchSummary(results: ScheduleResult[]): string[] {
  const by = new Map<string, number>();
  const moves = { completed: 0, aborted: 0, settled: 0 };
  let events = 0;
  let swaps = 0;
  let givesAndTakes = 0;
  let stale = 0;
  for (const r of results) {
    by.set(r.scenario, (by.get(r.scenario) ?? 0) + 1);
    for (const k of ['completed', 'aborted', 'settled'] as const) moves[k] += r.migrations[k];
    events += r.faults.length;
    swaps += r.swaps;
    givesAndTakes += r.givesAndTakes;
    stale += r.staleReads;
  }
  const line = (entries: Iterable<[string, number]>) => [...entries].map(([k, v]) => `${k} ${v}`).join(', ');
  return [
    `  scenarios: ${line(by)}`,
    '  by kind:',
    ...scenarioTable(results),
    `  events by kind: ${line(Object.entries(eventCounts(results)))}`,
    `  events: ${events}; migrations completed ${moves.completed}, aborted ${moves.aborted}, settled ${moves.settled}; swaps ordered ${swaps}; runs in which a node gave and took ${givesAndTakes}; stale answers ${stale}`,
  ];
}

/** A failed schedule: its seed, how to replay it, then its violations, its steps and its first errors. */
export function failureReport(r: ScheduleResult, replay: string): string {
  return [
    `seed ${r.seed} (${r.scenario}) FAILED — replay: ${replay}`,
    ...r.violations.map((v) => `  violation: ${v}`),
    ...r.faults.map((f) => `  step: ${f}`),
    ...r.errors.slice(0, 5).map((e) => `  error: ${e}`),
  ].join('\n');
}

/** Runs seeds on `lanes` lanes at once; returns every result. */
export async function runSchedules(
  lanes: Lane[],
  seeds: number[],
  onResult?: (r: ScheduleResult) => void,
  kinds: readonly ScheduleKind[] = SCENARIOS,
): Promise<ScheduleResult[]> {
  const results: ScheduleResult[] = [];
  let next = 0;
  await Promise.all(
    lanes.map(async (lane) => {
      while (next < seeds.length) {
        const seed = seeds[next++]!;
        // A schedule that throws (a harness or store error) counts as failed; the others go on.
        const r = await runSchedule(lane, seed, kinds).catch(
          (error: unknown): ScheduleResult => ({
            seed,
            scenario: 'harness-error',
            faults: [],
            violations: [`the schedule threw: ${(error as Error).stack ?? error}`],
            rounds: 0,
            migrations: { completed: 0, aborted: 0, settled: 0 },
            errors: [],
            swaps: 0,
            spills: 0,
            givesAndTakes: 0,
            lost: 0,
            doubled: 0,
            staleReads: 0,
          }),
        );
        results.push(r);
        onResult?.(r);
      }
    }),
  );
  return results;
}
