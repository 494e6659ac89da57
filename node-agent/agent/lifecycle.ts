// The handlers of a VM's life on its owner: start, run, checkpoint, suspend, fail, delete, and
// the guest bookkeeping (load, stop, resume) the migration handlers share.
import type { Holding } from '../../shared/domain/protocol.ts';
import { afterFailure } from '../../shared/domain/restart.ts';
import { ConditionFailed, Corrupt, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import {
  deleteVmItem,
  failVm,
  findVm,
  markRunning,
  markSuspended,
  recordCheckpoint,
  recordImageRecovery,
  restartOwn,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import { GuestFault } from '../kernel/budget.ts';
import type { StartResult, VmLaunch } from '../kernel/types.ts';
import { sealInlineImage } from './inline-image.ts';
import type { Handler, OpContext } from './types.ts';

/** What the kernel needs to run a VM item's guest (fence, image and pause come per call). */
export const launchOf = (vm: VmRecord) => ({
  id: vm.id,
  guest: vm.guest,
  memPages: vm.memPages,
  ...(vm.targetLoad !== undefined ? { targetLoad: vm.targetLoad } : {}),
  ...(vm.cpuLimit !== undefined ? { cpuLimit: vm.cpuLimit } : {}),
});

/** Loads a guest paused and records the holding; a copy the agent no longer tracks is dropped first. */
export async function load(
  ctx: OpContext,
  launch: VmLaunch,
  holding: Holding,
): Promise<StartResult | undefined> {
  if (ctx.kernel.has(launch.id)) ctx.kernel.stop(launch.id);
  ctx.held.delete(launch.id);
  const out = await ctx.kernel.start(launch);
  ctx.held.set(launch.id, holding);
  return out ?? undefined;
}

/** Drops a guest from the kernel and forgets everything the agent tracked of it. */
export function stopGuest(ctx: OpContext, id: string) {
  if (ctx.kernel.has(id)) ctx.kernel.stop(id);
  ctx.held.delete(id);
  ctx.outbound.delete(id);
  ctx.precopied.delete(id);
  ctx.lastCheckpoint.delete(id);
}

/** Schedules a held guest again (if paused) and clears its migration marks. */
export function resumeGuest(ctx: OpContext, id: string) {
  const h = ctx.held.get(id);
  if (!h) return;
  if (h.paused) ctx.kernel.resume(id);
  h.paused = false;
  delete h.migrationId;
  ctx.outbound.delete(id);
  ctx.precopied.delete(id);
}

/** The kernel's failure of a guest this node holds, as a decision input. */
export function failureOf(ctx: OpContext, id: string): { failure?: string } {
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
  await ctx.step('fail', vm.id, () =>
    failVm(ctx.clients, { id: vm.id, node: ctx.self, fence: vm.fence, reason, next, now }),
  );
  stopGuest(ctx, vm.id);
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

/** Owned and PENDING: load paused (fresh or from its image); a restore that fell back is recorded. */
export const start: Handler<'start'> = async (ctx, _action, vm, id) => {
  const launch = { ...launchOf(vm), fence: vm.fence, ...(vm.image ? { image: vm.image } : {}), paused: true };
  // The restore reads the image chain from S3: a final delta still in the item goes there first.
  await sealInlineImage(ctx, vm);
  let started: StartResult | undefined;
  try {
    started = await ctx.step('start', id, () => load(ctx, launch, { fence: vm.fence, paused: true }));
  } catch (error) {
    const reason = startFailure(error);
    if (reason === undefined) throw error;
    await recordFailure(ctx, vm, reason);
    return false;
  }
  if (started?.recovery) await recordRecovery(ctx, vm, started.recovery);
  ctx.lastCheckpoint.set(id, ctx.clock());
  return true;
};

/** A restore that skipped broken images: the table learns which image runs and what was lost. */
async function recordRecovery(ctx: OpContext, vm: VmRecord, recovery: NonNullable<StartResult['recovery']>) {
  const broken = vm.image?.manifest;
  if (!broken) return;
  await ctx.step('recordImageRecovery', vm.id, () =>
    recordImageRecovery(ctx.clients, {
      id: vm.id,
      node: ctx.self,
      fence: vm.fence,
      image: recovery.image,
      recovery: {
        broken,
        why: recovery.why,
        restored: recovery.image.manifest,
        lostSeconds: recovery.lostSeconds,
        at: ctx.clock(),
      },
    }),
  );
  ctx.log.warn(
    { node: ctx.self, vm: vm.id, broken, restored: recovery.image.manifest, why: recovery.why },
    `restored an older image; ${recovery.lostSeconds} s of guest work lost`,
  );
}

export const fail: Handler<'fail'> = async (ctx, action, vm) => {
  await recordFailure(ctx, vm, action.reason);
  return false;
};

export const markRunningAndResume: Handler<'markRunning'> = async (ctx, _action, vm, id) => {
  await ctx.step('markRunning', id, () => markRunningOnce(ctx, vm));
  resumeGuest(ctx, id);
  ctx.log.info({ node: ctx.self, vm: id, fence: vm.fence }, 'running');
  return false;
};

export const resumeHeld: Handler<'resume'> = (ctx, _action, _vm, id) => {
  resumeGuest(ctx, id);
  return false;
};

export const recover: Handler<'recover'> = async (ctx, _action, vm, id) => {
  await ctx.step('recover', id, () =>
    restartOwn(ctx.clients, { id, node: ctx.self, fence: vm.fence, now: ctx.clock(), seen: 'RUNNING' }),
  );
  ctx.log.warn(
    { node: ctx.self, vm: id, fence: vm.fence + 1 },
    'restarting a VM this node lost, from its last image',
  );
  return true;
};

export const checkpoint: Handler<'checkpoint'> = async (ctx, _action, vm) => {
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
  return false;
};

export const suspend: Handler<'suspend'> = async (ctx, _action, vm, id) => {
  await ctx.step('suspend', id, () => ctx.kernel.pause(id));
  const h = ctx.held.get(id);
  if (h) h.paused = true;
  const full = await ctx.step(
    'checkpoint',
    id,
    () => ctx.kernel.checkpoint(id, 'full'),
    (r) => r.image,
  );
  await ctx.step(
    'markSuspended',
    id,
    () =>
      markSuspended(ctx.clients, {
        id,
        node: ctx.self,
        fence: vm.fence,
        image: full.image,
        now: ctx.clock(),
      }),
    () => full.image,
  );
  stopGuest(ctx, id);
  ctx.log.info({ node: ctx.self, vm: id, bytes: full.bytes }, 'suspended');
  return false;
};

export const suspendFromImage: Handler<'suspendFromImage'> = async (ctx, _action, vm, id) => {
  await ctx.step(
    'markSuspended',
    id,
    () => markSuspended(ctx.clients, { id, node: ctx.self, fence: vm.fence, now: ctx.clock() }),
    () => vm.image,
  );
  return false;
};

export const deleteVm: Handler<'delete'> = async (ctx, _action, vm, id) => {
  stopGuest(ctx, id);
  await ctx.step('delete', id, async () => {
    await ctx.images?.deleteVmImages(id);
    await deleteVmItem(ctx.clients, id, vm.fence, 'DELETING');
  });
  ctx.records.delete(id);
  ctx.log.info({ node: ctx.self, vm: id }, 'deleted');
  return false;
};

/**
 * markRunning, treating "already RUNNING under this fence, marked by this very incarnation" (a
 * repeated step) as done. RUNNING under this node id but marked by another incarnation is another
 * process's guest: not ours to run.
 */
async function markRunningOnce(ctx: OpContext, vm: VmRecord) {
  try {
    await markRunning(ctx.clients, {
      id: vm.id,
      node: ctx.self,
      fence: vm.fence,
      now: ctx.clock(),
      incarnation: ctx.incarnation,
    });
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    const now = await findVm(ctx.clients, vm.id);
    if (!(now?.owner === ctx.self && now.fence === vm.fence && now.state === 'RUNNING')) throw error;
    if (now.startedBy === ctx.incarnation) return;
    // Another process under this node id runs it: drop the copy loaded here, never resume it.
    stopGuest(ctx, vm.id);
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
