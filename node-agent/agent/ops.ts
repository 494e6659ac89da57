// One VM's operation: re-read the item, decide with the protocol, act. A step whose fenced write
// fails (someone else moved the VM on) loops back to a fresh read, so the node always ends in
// the state the table asks for, or does nothing.

import { bestPlacement, placementVmOf } from '../../shared/domain/placement.ts';
import {
  type Action,
  type Holding,
  inEarlierExchange,
  nextAction,
  takeDeadline,
} from '../../shared/domain/protocol.ts';
import { afterFailure } from '../../shared/domain/restart.ts';
import type { ImageRef, MigrationOrder } from '../../shared/domain/vm-state.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed, Corrupt, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { listNodes, placementNode } from '../../shared/storage/nodes.ts';
import {
  abortMigration,
  deleteVmItem,
  failVm,
  findVm,
  markImageReady,
  markRunning,
  markSuspended,
  recordCheckpoint,
  recordImageRecovery,
  restartOwn,
  settleMigration,
  takeOwnership,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import { GuestFault } from '../kernel/budget.ts';
import type { Kernel, StartResult, VmLaunch } from '../kernel/types.ts';
import type { AgentConfig, ImageCleaner, Log } from './agent.ts';
import type { FaultPoint } from './faults.ts';

export interface OpContext {
  self: string;
  /** This agent process's incarnation (recorded on the VMs it marks RUNNING). */
  incarnation: string;
  clients: Clients;
  kernel: Kernel;
  clock: () => number;
  log: Log;
  config: AgentConfig;
  held: Map<string, Holding>;
  records: Map<string, VmRecord>;
  lastCheckpoint: Map<string, number>;
  /** A source's progress between its stop and the hand-over, kept across retries. */
  outbound: Map<string, { stoppedAt: number; precopy: number }>;
  images: ImageCleaner | undefined;
  /** Runs one protocol step between fault points; throws Crash/Fenced when the node died or fenced meanwhile. */
  step<T>(
    point: FaultPoint,
    vm: string,
    fn: () => Promise<T> | T,
    describe?: (out: T) => ImageRef | undefined,
  ): Promise<T>;
}

const MAX_ROUNDS = 4;
/** Pre-copy rounds at most, and the dirty-page count at which pre-copy has converged. */
const PRECOPY_ROUNDS = 4;
const PRECOPY_DONE_PAGES = 8;

/** Brings one VM in line with the table; `hint` is the (eventually consistent) index copy, if any. */
export async function runVmOp(ctx: OpContext, id: string, hint: VmRecord | undefined): Promise<void> {
  const decide = (vm: VmRecord | undefined) =>
    nextAction({
      vm,
      self: ctx.self,
      held: ctx.held.get(id),
      now: ctx.clock(),
      checkpointDue: ctx.clock() - (ctx.lastCheckpoint.get(id) ?? 0) >= ctx.config.checkpointMs,
      busyElsewhere: vm !== undefined && inEarlierExchange(vm, ctx.records.values(), ctx.self),
      ...failureOf(ctx, id),
    });
  // Skip the consistent read when the index copy says there is nothing to do.
  if (hint && decide(hint).kind === 'none') return;
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const vm = await findVm(ctx.clients, id);
    if (vm) ctx.records.set(id, vm);
    const action = decide(vm);
    if (action.kind === 'none') return;
    try {
      const again = await perform(ctx, action, vm, id);
      if (!again) return;
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      ctx.log.debug(
        { node: ctx.self, vm: id, action: action.kind, transition: error.transition },
        'lost a race; re-reading',
      );
    }
  }
}

/** Performs one action; returns true when the VM needs another decision right away (e.g. recover → start). */
async function perform(
  ctx: OpContext,
  action: Action,
  vm: VmRecord | undefined,
  id: string,
): Promise<boolean> {
  const { kernel, self, clients, held } = ctx;
  switch (action.kind) {
    case 'none':
      return false;
    case 'stop':
      ctx.log.info({ node: self, vm: id, why: action.why }, 'stopping guest');
      stop(ctx, id);
      return true;
  }
  if (!vm) return false;
  switch (action.kind) {
    case 'start': {
      const launch = {
        ...launchOf(vm),
        fence: vm.fence,
        ...(vm.image ? { image: vm.image } : {}),
        paused: true,
      };
      let started: StartResult | undefined;
      try {
        started = await ctx.step('start', id, () => load(ctx, launch, { fence: vm.fence, paused: true }));
      } catch (error) {
        const reason = startFailure(error);
        if (reason === undefined) throw error;
        await recordFailure(ctx, vm, reason);
        return false;
      }
      const recovery = started?.recovery;
      if (recovery && vm.image) {
        await ctx.step('recordImageRecovery', id, () =>
          recordImageRecovery(clients, id, self, vm.fence, recovery.image, {
            broken: vm.image!.manifest,
            why: recovery.why,
            restored: recovery.image.manifest,
            lostSeconds: recovery.lostSeconds,
            at: ctx.clock(),
          }),
        );
        ctx.log.warn(
          {
            node: self,
            vm: id,
            broken: vm.image.manifest,
            restored: recovery.image.manifest,
            why: recovery.why,
          },
          `restored an older image; ${recovery.lostSeconds} s of guest work lost`,
        );
      }
      ctx.lastCheckpoint.set(id, ctx.clock());
      return true;
    }
    case 'fail':
      await recordFailure(ctx, vm, action.reason);
      return false;
    case 'markRunning': {
      await ctx.step('markRunning', id, () => markRunningOnce(ctx, vm));
      resume(ctx, id);
      ctx.log.info({ node: self, vm: id, fence: vm.fence }, 'running');
      return false;
    }
    case 'resume':
      resume(ctx, id);
      return false;
    case 'recover':
      await ctx.step('recover', id, () => restartOwn(clients, id, self, vm.fence, ctx.clock(), 'RUNNING'));
      ctx.log.warn(
        { node: self, vm: id, fence: vm.fence + 1 },
        'restarting a VM this node lost, from its last image',
      );
      return true;
    case 'checkpoint':
      await checkpoint(ctx, vm);
      return false;
    case 'migrateOut':
      await migrateOut(ctx, vm, action.order);
      return false;
    case 'migrateIn':
      await migrateIn(ctx, vm, action.order);
      return false;
    case 'abort':
      await ctx.step('abort', id, () => abortMigration(clients, id, action.order.id, ctx.clock()));
      await history(ctx, id, action.order, { outcome: 'aborted', endedAt: ctx.clock(), by: self });
      return true;
    case 'settle': {
      const now = ctx.clock();
      const records = await listNodes(clients);
      const line = records.find((n) => n.id === action.order.from)?.report?.vms[id];
      const placed = placementVmOf(vm, line?.factors);
      const node = bestPlacement(records.map(placementNode), placed, now, [
        action.order.to,
        action.order.from,
      ]);
      if (!node) return false;
      await ctx.step('settle', id, () =>
        settleMigration(clients, {
          id,
          migrationId: action.order.id,
          fence: vm.fence,
          node,
          now: ctx.clock(),
        }),
      );
      await history(ctx, id, action.order, {
        outcome: 'settled',
        endedAt: ctx.clock(),
        by: self,
        settledOn: node,
      });
      return true;
    }
    case 'suspend': {
      await ctx.step('suspend', id, () => kernel.pause(id));
      const h = held.get(id);
      if (h) h.paused = true;
      const full = await ctx.step(
        'checkpoint',
        id,
        () => kernel.checkpoint(id, 'full'),
        (r) => r.image,
      );
      await ctx.step(
        'markSuspended',
        id,
        () => markSuspended(clients, id, self, vm.fence, full.image, ctx.clock()),
        () => full.image,
      );
      stop(ctx, id);
      ctx.log.info({ node: self, vm: id, bytes: full.bytes }, 'suspended');
      return false;
    }
    case 'suspendFromImage':
      await ctx.step(
        'markSuspended',
        id,
        () => markSuspended(clients, id, self, vm.fence, undefined, ctx.clock()),
        () => vm.image,
      );
      return false;
    case 'delete':
      stop(ctx, id);
      await ctx.step('delete', id, async () => {
        await ctx.images?.deleteVmImages(id);
        await deleteVmItem(clients, id, vm.fence, 'DELETING');
      });
      ctx.records.delete(id);
      ctx.log.info({ node: self, vm: id }, 'deleted');
      return false;
  }
}

const launchOf = (vm: VmRecord) => ({
  id: vm.id,
  guest: vm.guest,
  memPages: vm.memPages,
  ...(vm.targetLoad !== undefined ? { targetLoad: vm.targetLoad } : {}),
  ...(vm.cpuLimit !== undefined ? { cpuLimit: vm.cpuLimit } : {}),
});

/** Loads a guest paused and records the holding; a copy the agent no longer tracks is dropped first. */
async function load(ctx: OpContext, launch: VmLaunch, holding: Holding): Promise<StartResult | undefined> {
  if (ctx.kernel.has(launch.id)) ctx.kernel.stop(launch.id);
  ctx.held.delete(launch.id);
  const out = await ctx.kernel.start(launch);
  ctx.held.set(launch.id, holding);
  return out ?? undefined;
}

/** The kernel's failure of a guest this node holds, as a decision input. */
function failureOf(ctx: OpContext, id: string): { failure?: string } {
  if (!ctx.held.has(id)) return {};
  const failure = ctx.kernel.failure?.(id);
  return failure === undefined ? {} : { failure };
}

/**
 * Why a start failed for good (the guest's or its image's fault), or undefined for an error worth
 * retrying at the next reconcile (the store did not answer, say).
 */
function startFailure(error: unknown): string | undefined {
  if (error instanceof GuestFault) return error.reason;
  if (error instanceof Corrupt) return `no usable image: ${error.message}`;
  if (error instanceof InvalidInput) return `cannot start: ${error.message}`;
  if (error instanceof NotFound) return `cannot start: ${error.message}`;
  return undefined;
}

/** Records a guest's own failure by its restart policy (FAILED, or PENDING after a backoff) and drops it. */
async function recordFailure(ctx: OpContext, vm: VmRecord, reason: string) {
  const now = ctx.clock();
  const next = afterFailure(vm.restartPolicy, vm.failures ?? 0, now);
  await ctx.step('fail', vm.id, () => failVm(ctx.clients, vm.id, ctx.self, vm.fence, reason, next, now));
  stop(ctx, vm.id);
  ctx.log.warn(
    {
      node: ctx.self,
      vm: vm.id,
      reason,
      failures: next.failures,
      ...(next.state === 'PENDING' ? { retryAt: next.retryAt } : {}),
    },
    next.state === 'FAILED' ? 'guest failed' : 'guest failed; restarting after a backoff',
  );
}

function stop(ctx: OpContext, id: string) {
  if (ctx.kernel.has(id)) ctx.kernel.stop(id);
  ctx.held.delete(id);
  ctx.outbound.delete(id);
  ctx.lastCheckpoint.delete(id);
}

function resume(ctx: OpContext, id: string) {
  const h = ctx.held.get(id);
  if (!h) return;
  if (h.paused) ctx.kernel.resume(id);
  h.paused = false;
  delete h.migrationId;
  ctx.outbound.delete(id);
}

/**
 * markRunning, treating "already RUNNING under this fence, marked by this very incarnation" (a
 * repeated step) as done. RUNNING under this node id but marked by another incarnation is another
 * process's guest: not ours to run.
 */
async function markRunningOnce(ctx: OpContext, vm: VmRecord) {
  try {
    await markRunning(ctx.clients, vm.id, ctx.self, vm.fence, ctx.clock(), ctx.incarnation);
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    const now = await findVm(ctx.clients, vm.id);
    if (!(now?.owner === ctx.self && now.fence === vm.fence && now.state === 'RUNNING')) throw error;
    if (now.startedBy === ctx.incarnation) return;
    // Another process under this node id runs it: drop the copy loaded here, never resume it.
    stop(ctx, vm.id);
    throw new ForeignStart(vm.id, now.startedBy);
  }
}

/** A VM this node id owns was marked RUNNING by another incarnation: two processes claim the node id. */
export class ForeignStart extends Error {
  override readonly name = 'ForeignStart';
  constructor(
    readonly vm: string,
    readonly by: string | undefined,
  ) {
    super(`${vm} was started by another agent incarnation (${by ?? 'unrecorded'}) under this node id`);
  }
}

async function checkpoint(ctx: OpContext, vm: VmRecord) {
  const result = await ctx.step(
    'checkpoint',
    vm.id,
    () => ctx.kernel.checkpoint(vm.id, 'delta'),
    (r) => r.image,
  );
  await ctx.step(
    'recordCheckpoint',
    vm.id,
    () =>
      recordCheckpoint(ctx.clients, {
        id: vm.id,
        node: ctx.self,
        fence: vm.fence,
        image: result.image,
        factors: vm.factors,
        now: ctx.clock(),
      }),
    () => result.image,
  );
  ctx.lastCheckpoint.set(vm.id, ctx.clock());
}

/** Source side: pre-copy while running, stop, final delta, IMAGE_READY, forget. */
async function migrateOut(ctx: OpContext, vm: VmRecord, order: MigrationOrder) {
  const { kernel, clients, self } = ctx;
  const id = vm.id;
  let progress = ctx.outbound.get(id);
  if (!progress) {
    // Iterative pre-copy: each round writes what the guest dirtied during the previous one; stop
    // when the dirty set is small or no longer shrinking, so the final delta (downtime) is small.
    let precopyBytes = 0;
    let previous = Number.POSITIVE_INFINITY;
    for (let round = 0; round < PRECOPY_ROUNDS; round += 1) {
      const result = await ctx.step(
        'precopy',
        id,
        () => kernel.checkpoint(id, 'delta'),
        (r) => r.image,
      );
      precopyBytes += result.bytes;
      if (result.pages <= PRECOPY_DONE_PAGES || result.pages > previous / 2) break;
      previous = result.pages;
    }
    await ctx.step('pause', id, () => kernel.pause(id));
    const h = ctx.held.get(id);
    if (h) h.paused = true;
    progress = { stoppedAt: ctx.clock(), precopy: precopyBytes };
    ctx.outbound.set(id, progress);
  }
  const final = await ctx.step(
    'finalDelta',
    id,
    () => kernel.checkpoint(id, 'delta'),
    (r) => r.image,
  );
  const bytes = { precopy: progress.precopy, final: final.bytes };
  const now = ctx.clock();
  const stoppedAt = progress.stoppedAt;
  await ctx.step(
    'markImageReady',
    id,
    () =>
      markImageReady(clients, {
        id,
        order,
        fence: vm.fence,
        image: final.image,
        stoppedAt,
        bytes,
        now,
        deadline: takeDeadline(now, vm.memPages, ctx.config.timings),
      }),
    () => final.image,
  );
  await ctx.step('stopSource', id, () => stop(ctx, id));
  ctx.log.info({ node: self, vm: id, to: order.to, migration: order.id, bytes }, 'image handed over');
}

/** Target side: load paused from the final image (the kernel adjusts the vTOD), take ownership, run. */
async function migrateIn(ctx: OpContext, vm: VmRecord, order: MigrationOrder) {
  const { clients, self } = ctx;
  const id = vm.id;
  if (!ctx.held.has(id)) {
    const launch = {
      ...launchOf(vm),
      fence: vm.fence + 1,
      ...(vm.image ? { image: vm.image } : {}),
      paused: true,
    };
    await ctx.step('loadTarget', id, () =>
      load(ctx, launch, { fence: vm.fence + 1, paused: true, migrationId: order.id }),
    );
  }
  const now = ctx.clock();
  await ctx.step('takeOwnership', id, () =>
    takeOwnership(clients, {
      id,
      migrationId: order.id,
      fence: vm.fence,
      node: self,
      now,
      cooldownUntil: now + ctx.config.cooldownMs,
    }),
  );
  await ctx.step('resumeTarget', id, () => resume(ctx, id));
  const runningAt = ctx.clock();
  ctx.lastCheckpoint.set(id, runningAt);
  await history(ctx, id, order, { outcome: 'completed', endedAt: runningAt, runningAt, by: self });
  ctx.log.info(
    {
      node: self,
      vm: id,
      from: order.from,
      migration: order.id,
      bytes: order.bytes,
      downtimeMs: order.stoppedAt === undefined ? undefined : runningAt - order.stoppedAt,
    },
    'migrated in',
  );
}

async function history(
  ctx: OpContext,
  vm: string,
  order: MigrationOrder,
  end: Parameters<typeof migrationRecord>[2],
) {
  try {
    await ctx.step('history', vm, () => putMigration(ctx.clients, migrationRecord(order, vm, end)));
  } catch (error) {
    // History is a record, not state: losing it must not undo a finished transition.
    if ((error as Error).name === 'Crash' || (error as Error).name === 'Fenced') throw error;
    ctx.log.warn({ node: ctx.self, vm, err: (error as Error).message }, 'migration history not written');
  }
}
