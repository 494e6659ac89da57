// The migration handlers: the source's pre-copy, stop and final delta; the target's load, take
// and run; and the expired orders anyone may abort or settle. Each table write is conditional on
// the fence and the order, so a step repeated or raced fails instead of forking the VM.

import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { bestPlacement, placementVmOf } from '../../shared/domain/placement.ts';
import { afterRound, budgetOf, dirtyRateOf, nextPrecopyStep } from '../../shared/domain/precopy.ts';
import type { Holding } from '../../shared/domain/protocol.ts';
import { sourceStep, takeDeadline } from '../../shared/domain/protocol.ts';
import type { ImageRef, MigrationOrder } from '../../shared/domain/vm-state.ts';
import { Corrupt } from '../../shared/storage/errors.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { listNodes, placementNode } from '../../shared/storage/nodes.ts';
import { announcePrecopy, hintInbound, markTargetReady } from '../../shared/storage/switchover.ts';
import {
  abortMigration,
  markImageReady,
  settleMigration,
  takeOwnership,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import type { VmLaunch } from '../kernel/types.ts';
import { Crash, Fenced } from './faults.ts';
import { launchOf, load, resumeGuest, stopGuest } from './lifecycle.ts';
import type { Handler, OpContext } from './types.ts';

/**
 * Source side, in three steps (see sourceStep): hint the target and pre-copy while the guest runs,
 * announcing the pre-copy; wait (watching the item) until the target is restored and waiting; then
 * stop, write the final delta, IMAGE_READY (the target's cue), forget.
 */
export const migrateOut: Handler<'migrateOut'> = async (ctx, action, vm, id) => {
  if (!ctx.outbound.has(id)) {
    const step = sourceStep(action.order, ctx.clock(), ctx.config.timings);
    if (step === 'precopy') {
      const announced = await precopyAndAnnounce(ctx, vm, action.order);
      ctx.watch(id, announced);
      return false;
    }
    if (step === 'waitForTarget') {
      ctx.watch(id, vm);
      return false;
    }
  }
  await stopAndCopy(ctx, vm, action.order);
  return false;
};

/** Bytes per ms assumed for the image store before a round has measured it (64 MB/s). */
const PRIOR_TRANSFER_BYTES_PER_MS = PAGE_BYTES;

/**
 * Pre-copy while the guest runs, for as long as a round shrinks the remainder enough (see
 * shared/domain/precopy.ts); the target, told by a hint first, restores from what it wrote.
 */
async function precopyAndAnnounce(ctx: OpContext, vm: VmRecord, order: MigrationOrder): Promise<VmRecord> {
  const id = vm.id;
  try {
    await hintInbound(
      ctx.clients,
      { vm: id, migration: order.id, from: ctx.self, to: order.to },
      order.deadline + 60_000,
    );
  } catch (error) {
    // Only a hint: without it the target learns of the VM at IMAGE_READY, as before.
    ctx.log.warn({ node: ctx.self, vm: id, err: (error as Error).message }, 'inbound hint not written');
  }
  const seen = ctx.dirt(id);
  // Before a round has measured anything, whole pages as they code (the kernel's sample; 1 without
  // one): the last report's paging bounds the rounds' wire bytes from above, so the first decision
  // errs towards stopping.
  const residentBytes = (seen?.residentPages ?? vm.memPages) * PAGE_BYTES;
  const wire = ctx.kernel.wireRatio?.(id) ?? 1;
  let state: Parameters<typeof afterRound>[0] = {
    rounds: 0,
    remainderBytes: residentBytes * wire,
    transferBytesPerMs: PRIOR_TRANSFER_BYTES_PER_MS,
    dirtyBytesPerMs: seen ? dirtyRateOf(seen) * PAGE_BYTES * wire : 0,
    workingSetBytes: (seen?.dirtiedPages ?? 0) * PAGE_BYTES * wire,
    movedBytes: 0,
    budgetBytes: budgetOf(residentBytes),
  };
  let precopyBytes = 0;
  let image: ImageRef | undefined;
  let decision = nextPrecopyStep(state);
  // a driver that pre-copies inside its final state (QEMU) would write the whole guest each round
  const selfCopying = ctx.kernel.precopiesItself?.(vm.guest.kind) === true;
  while (decision.kind === 'round' && !selfCopying) {
    const startedAt = ctx.clock();
    const result = await ctx.step(
      'precopy',
      id,
      () => ctx.kernel.checkpoint(id, 'delta'),
      (r) => r.image,
    );
    precopyBytes += result.bytes;
    image = result.image;
    state = afterRound(state, { bytes: result.bytes, ms: ctx.clock() - startedAt });
    decision = nextPrecopyStep(state);
  }
  ctx.precopied.set(id, precopyBytes);
  ctx.log.debug(
    {
      node: ctx.self,
      vm: id,
      migration: order.id,
      rounds: state.rounds,
      precopyBytes,
      seen,
      ...(decision.kind === 'stop'
        ? { why: decision.why, predictedBytes: Math.round(decision.predictedBytes) }
        : { why: 'the driver pre-copies' }),
    },
    'pre-copy done; announcing it to the target',
  );
  return ctx.step(
    'announce',
    id,
    () =>
      announcePrecopy(ctx.clients, {
        id,
        migration: order.id,
        node: ctx.self,
        fence: vm.fence,
        ...(image ? { image } : {}),
        now: ctx.clock(),
      }),
    () => image,
  );
}

/** Stop the guest, write what it dirtied since the pre-copy, and hand the image over. */
async function stopAndCopy(ctx: OpContext, vm: VmRecord, order: MigrationOrder) {
  const id = vm.id;
  let progress = ctx.outbound.get(id);
  if (!progress) {
    await ctx.step('pause', id, () => ctx.kernel.pause(id));
    const h = ctx.held.get(id);
    if (h) h.paused = true;
    progress = { stoppedAt: ctx.clock(), precopy: ctx.precopied.get(id) ?? 0 };
    ctx.outbound.set(id, progress);
  }
  const final = await ctx.step(
    'finalDelta',
    id,
    () => ctx.kernel.checkpoint(id, 'delta', { final: true }),
    (r) => r.image,
  );
  const bytes = { precopy: progress.precopy, final: final.bytes };
  const now = ctx.clock();
  const stoppedAt = progress.stoppedAt;
  await ctx.step(
    'markImageReady',
    id,
    () =>
      markImageReady(ctx.clients, {
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
  const readyAt = ctx.clock();
  await ctx.step('stopSource', id, () => stopGuest(ctx, id));
  // Where the downtime went on this side (the target logs its own part; the bench joins them).
  const phases = {
    stoppedAt,
    encodeMs: final.timing?.encodeMs,
    uploadMs: final.timing?.uploadMs,
    itemWriteMs: readyAt - now,
    readyAt,
  };
  ctx.log.info(
    { node: ctx.self, vm: id, to: order.to, migration: order.id, bytes, phases },
    'image handed over',
  );
}

/** Target side, ahead of the final delta: restore paused from the pre-copy, say ready, watch the item. */
export const prepareIn: Handler<'prepareIn'> = async (ctx, action, vm, id) => {
  const order = action.order;
  const image = vm.image;
  if (image && !ctx.kernel.precopiesItself?.(vm.guest.kind)) {
    const launch = { ...launchOf(vm), fence: vm.fence + 1, image, paused: true };
    const holding = { fence: vm.fence + 1, paused: true, migrationId: order.id, image: image.manifest };
    await ctx.step('prepareTarget', id, () => load(ctx, launch, holding));
  }
  const ready = await ctx.step('targetReady', id, () =>
    markTargetReady(ctx.clients, {
      id,
      migration: order.id,
      node: ctx.self,
      fence: vm.fence,
      now: ctx.clock(),
    }),
  );
  ctx.watch(id, ready);
  return false;
};

/**
 * Target side at IMAGE_READY: bring the copy up to the final image (applying the final delta to the
 * copy restored from the pre-copy, or a whole restore when there is none), take ownership, run,
 * and tick at once.
 */
export const migrateIn: Handler<'migrateIn'> = async (ctx, action, vm, id) => {
  const enteredAt = ctx.clock();
  const order = action.order;
  const image = vm.image;
  let loading: Promise<LoadTiming | undefined> = Promise.resolve(undefined);
  if (!ctx.held.has(id) || ctx.held.get(id)?.image !== image?.manifest) {
    const launch = { ...launchOf(vm), fence: vm.fence + 1, ...(image ? { image } : {}), paused: true };
    const holding = {
      fence: vm.fence + 1,
      paused: true,
      migrationId: order.id,
      ...(image ? { image: image.manifest } : {}),
    };
    loading = ctx.step('loadTarget', id, () => bringUp(ctx, launch, holding));
  }
  // The load and the take overlap; the guest runs only once both are done. A take without a load
  // leaves the VM owned here and not held: the next decision restarts it from this same image.
  const now = ctx.clock();
  const taking = ctx
    .step('takeOwnership', id, () =>
      takeOwnership(ctx.clients, {
        id,
        migrationId: order.id,
        fence: vm.fence,
        node: ctx.self,
        now,
        cooldownUntil: now + ctx.config.cooldownMs,
      }),
    )
    .then(() => ctx.clock());
  const [loaded, taken] = await Promise.allSettled([loading, taking]);
  if (loaded.status === 'rejected') throw loaded.reason;
  if (taken.status === 'rejected') throw taken.reason;
  const resumedAt = ctx.clock();
  await ctx.step('resumeTarget', id, () => resumeGuest(ctx, id));
  ctx.wake();
  const runningAt = ctx.clock();
  ctx.lastCheckpoint.set(id, runningAt);
  await history(ctx, id, order, { outcome: 'completed', endedAt: runningAt, runningAt, by: ctx.self });
  // Where the downtime went on this side (see stopAndCopy for the source's part).
  const phases = {
    enteredAt,
    ...loaded.value,
    takeMs: taken.value - now,
    firstTickMs: runningAt - resumedAt,
    runningAt,
  };
  ctx.log.info(
    {
      node: ctx.self,
      vm: id,
      from: order.from,
      migration: order.id,
      bytes: order.bytes,
      downtimeMs: order.stoppedAt === undefined ? undefined : runningAt - order.stoppedAt,
      phases,
    },
    'migrated in',
  );
  return false;
};

/** How the target brought its copy up to the final image, and what that took (ms). */
interface LoadTiming {
  path: 'apply' | 'restore';
  downloadMs?: number;
  applyMs?: number;
}

/**
 * Applies the final image to the copy held paused for this migration (only what differs is read);
 * when that is impossible or fails, loads the image whole, as a copy that never was would be.
 */
async function bringUp(ctx: OpContext, launch: VmLaunch, holding: Holding): Promise<LoadTiming> {
  const id = launch.id;
  const held = ctx.held.get(id);
  const apply = ctx.kernel.applyImage?.bind(ctx.kernel);
  if (
    apply &&
    launch.image &&
    held?.paused &&
    held.image !== undefined &&
    held.migrationId === holding.migrationId &&
    ctx.kernel.has(id)
  ) {
    try {
      const out = await apply(id, launch.image);
      ctx.held.set(id, { ...held, image: launch.image.manifest });
      return { path: 'apply', ...out.timing };
    } catch (error) {
      ctx.log.warn(
        { node: ctx.self, vm: id, err: (error as Error).message },
        'final image not applied to the held copy; loading it whole',
      );
    }
  }
  const out = await load(ctx, launch, holding);
  if (out?.recovery) {
    // The final image is broken and an older one restored: never run that unrecorded as if it were
    // the final state. Dropped here, the VM (owned once the take lands) restarts through `start`,
    // which records the recovery, or fails the VM with the reason when no image restores.
    stopGuest(ctx, launch.id);
    throw new Corrupt(`the final image does not restore: ${out.recovery.why}`);
  }
  return { path: 'restore', ...out?.timing };
}

/** An ORDERED migration past its deadline (or declined): drop the order; the source keeps the VM. */
export const abort: Handler<'abort'> = async (ctx, action, _vm, id) => {
  await ctx.step('abort', id, () => abortMigration(ctx.clients, id, action.order.id, ctx.clock()));
  await history(ctx, id, action.order, { outcome: 'aborted', endedAt: ctx.clock(), by: ctx.self });
  return true;
};

/** An IMAGE_READY migration past its deadline: restart from the final image where it fits best. */
export const settle: Handler<'settle'> = async (ctx, action, vm, id) => {
  const node = await settleTarget(ctx, vm, action.order);
  if (!node) return false;
  await ctx.step('settle', id, () =>
    settleMigration(ctx.clients, {
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
    by: ctx.self,
    settledOn: node,
  });
  return true;
};

/** The node to restart a stuck migration's VM on: the target if it fits, else the source, else another. */
async function settleTarget(ctx: OpContext, vm: VmRecord, order: MigrationOrder) {
  const records = await listNodes(ctx.clients);
  const line = records.find((n) => n.id === order.from)?.report?.vms[vm.id];
  const placed = placementVmOf(vm, line?.factors);
  return bestPlacement(records.map(placementNode), placed, ctx.clock(), [order.to, order.from]);
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
    if (error instanceof Crash || error instanceof Fenced) throw error;
    ctx.log.warn({ node: ctx.self, vm, err: (error as Error).message }, 'migration history not written');
  }
}
