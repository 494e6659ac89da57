// The migration handlers: the source's pre-copy, stop and final delta; the target's load, take
// and run; and the expired orders anyone may abort or settle. Each table write is conditional on
// the fence and the order, so a step repeated or raced fails instead of forking the VM.

import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { bestPlacement, placementVmOf } from '../../shared/domain/placement.ts';
import { afterRound, firstPrecopyState, nextPrecopyStep, runsRound } from '../../shared/domain/precopy.ts';
import type { Holding } from '../../shared/domain/protocol.ts';
import { abortReason, sourceStep, takeDeadline } from '../../shared/domain/protocol.ts';
import type { ImageRef, MigrationOrder } from '../../shared/domain/vm-state.ts';
import { Corrupt } from '../../shared/storage/errors.ts';
import type { HeldObject } from '../../shared/storage/image-store.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { listNodes, placementNode } from '../../shared/storage/nodes.ts';
import {
  announcePrecopy,
  hintInbound,
  INLINE_IMAGE_BYTES,
  inlineImageOf,
  markTargetReady,
} from '../../shared/storage/switchover.ts';
import {
  abortMigration,
  markImageReady,
  settleMigration,
  takeOwnership,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import type { VmLaunch } from '../kernel/types.ts';
import { Crash, Fenced } from './faults.ts';
import { publishHeld, sealInlineImage, sealQuietly } from './inline-image.ts';
import { launchOf, load, resumeGuest, stopGuest } from './lifecycle.ts';
import type { Handler, OpContext, Outbound } from './types.ts';

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
  // An earlier move's final delta still in the item goes to S3 now, so this move's may take its place.
  await sealQuietly(ctx, vm);
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
  let state: Parameters<typeof afterRound>[0] = firstPrecopyState({
    residentPages: seen?.residentPages ?? vm.memPages,
    measured: seen,
    wireRatio: ctx.kernel.wireRatio?.(id) ?? 1,
    transferBytesPerMs: PRIOR_TRANSFER_BYTES_PER_MS,
  });
  let precopyBytes = 0;
  let image: ImageRef | undefined;
  let decision = nextPrecopyStep(state);
  // a driver that pre-copies inside its final state (QEMU) would write the whole guest each round
  const selfCopying = ctx.kernel.precopiesItself?.(vm.guest.kind) === true;
  while (runsRound(decision, state, vm.image !== undefined) && !selfCopying) {
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

/**
 * Stop the guest, write what it dirtied since the pre-copy, and hand the image over. A final delta
 * of at most INLINE_IMAGE_BYTES is not uploaded: it travels in the hand-over write itself (the
 * item is its durable copy), and the target publishes it to S3 after its first tick.
 */
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
  const out = progress;
  // Only one inline image at a time: one still in the item (not yet published) keeps its place.
  const inlineOk = vm.inlineImage === undefined;
  const final = await ctx.step(
    'finalDelta',
    id,
    async () => {
      // A delta held back by an earlier try is the parent of this one: it must be on S3 first.
      await publishOutbound(ctx, id, out);
      const result = await ctx.kernel.checkpoint(id, 'delta', {
        final: true,
        ...(inlineOk ? { holdBackBytes: INLINE_IMAGE_BYTES } : {}),
      });
      if (result.held) out.held = result.held;
      return result;
    },
    (r) => r.image,
  );
  const bytes = { precopy: progress.precopy, final: final.bytes };
  const now = ctx.clock();
  const stoppedAt = progress.stoppedAt;
  const handOver = (inline: HeldObject | undefined) =>
    markImageReady(ctx.clients, {
      id,
      order,
      fence: vm.fence,
      image: final.image,
      stoppedAt,
      bytes,
      now,
      deadline: takeDeadline(now, vm.memPages, ctx.config.timings),
      inline,
    });
  let inlined = final.held !== undefined;
  try {
    await ctx.step(
      'markImageReady',
      id,
      () => handOver(final.held),
      () => final.image,
    );
  } catch (error) {
    if (error instanceof Crash || error instanceof Fenced || !final.held) throw error;
    // Not handed over (or not known to be): the held delta goes to S3 before anything builds on it.
    await keepHeld(ctx, id, out);
    // An item the delta does not fit in (a VM item that is large already) hands over through S3.
    if (!tooLarge(error) || !ctx.kernel.has(id)) throw error;
    inlined = false;
    await ctx.step(
      'markImageReady',
      id,
      () => handOver(undefined),
      () => final.image,
    );
  }
  const readyAt = ctx.clock();
  await ctx.step('stopSource', id, () => stopGuest(ctx, id));
  // Where the downtime went on this side (the target logs its own part; the bench joins them).
  const phases = {
    stoppedAt,
    // what the source knew when it stopped: the target ready (its note's time) or the wait ran out
    precopiedAt: order.precopiedAt,
    targetReadyAt: order.targetReadyAt,
    woke: ctx.woke?.by,
    encodeMs: final.timing?.encodeMs,
    uploadMs: inlined ? 0 : final.timing?.uploadMs,
    itemWriteMs: readyAt - now,
    inlineBytes: inlined ? final.bytes : 0,
    readyAt,
  };
  ctx.log.info(
    { node: ctx.self, vm: id, to: order.to, migration: order.id, bytes, phases },
    'image handed over',
  );
}

/** DynamoDB's refusal of an item over its size limit. */
const tooLarge = (error: unknown) =>
  (error as Error).name === 'ValidationException' && /size/i.test((error as Error).message);

/** Publishes the source's held-back final delta, if any (then the progress no longer holds it). */
async function publishOutbound(ctx: OpContext, id: string, progress: Outbound) {
  if (!progress.held) return;
  await publishHeld(ctx, id, progress.held);
  delete progress.held;
}

/**
 * A held delta that was not handed over must reach S3, since the kernel's next image builds on it.
 * If it cannot, the guest is dropped: the node restarts it from the table's last image instead.
 */
async function keepHeld(ctx: OpContext, id: string, progress: Outbound) {
  try {
    await publishOutbound(ctx, id, progress);
  } catch (error) {
    if (error instanceof Crash || error instanceof Fenced) throw error;
    ctx.log.warn(
      { node: ctx.self, vm: id, err: (error as Error).message },
      'held final delta not published; dropping the stopped guest',
    );
    stopGuest(ctx, id);
  }
}

/** Target side, ahead of the final delta: restore paused from the pre-copy, say ready, watch the item. */
export const prepareIn: Handler<'prepareIn'> = async (ctx, action, vm, id) => {
  const order = action.order;
  const image = vm.image;
  const startedAt = ctx.clock();
  if (image && !ctx.kernel.precopiesItself?.(vm.guest.kind)) {
    await sealInlineImage(ctx, vm);
    const launch = { ...launchOf(vm), fence: vm.fence + 1, image, paused: true };
    const holding = { fence: vm.fence + 1, paused: true, migrationId: order.id, image: image.manifest };
    await ctx.step('prepareTarget', id, () => load(ctx, launch, holding));
  }
  const restoredAt = ctx.clock();
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
  // When the target learnt of the pre-copy and what its restore took (the bench joins it to the move).
  const prepare = { woke: ctx.woke?.by, wokeAt: ctx.woke?.at, startedAt, restoredAt, readyAt: ctx.clock() };
  ctx.log.info({ node: ctx.self, vm: id, migration: order.id, prepare }, 'prepared for the final delta');
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
  const prepared = ctx.held.get(id)?.migrationId === order.id;
  const image = vm.image;
  // The final delta in the item itself, when the source sent it so: applied without a download.
  const { held } = inlineImageOf(vm);
  const inline = held && held.key === image?.manifest ? held : undefined;
  let loading: Promise<LoadTiming | undefined> = Promise.resolve(undefined);
  if (!ctx.held.has(id) || ctx.held.get(id)?.image !== image?.manifest) {
    const launch = { ...launchOf(vm), fence: vm.fence + 1, ...(image ? { image } : {}), paused: true };
    const holding = {
      fence: vm.fence + 1,
      paused: true,
      migrationId: order.id,
      ...(image ? { image: image.manifest } : {}),
    };
    loading = ctx.step('loadTarget', id, () => bringUp(ctx, vm, launch, holding, inline));
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
  // Off the downtime: the final delta leaves the item for S3 (a whole load published it already).
  if (loaded.value?.path !== 'restore') await sealQuietly(ctx, vm);
  // Where the downtime went on this side (see stopAndCopy for the source's part).
  const phases = {
    enteredAt,
    prepared,
    woke: ctx.woke?.by,
    wokeAt: ctx.woke?.at,
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
  /** Applied from the final delta carried in the item (no download). */
  inline?: boolean;
  downloadMs?: number;
  applyMs?: number;
}

/**
 * Applies the final image to the copy held paused for this migration (only what differs is read,
 * and the final delta from `inline` when the item carried it); when that is impossible or fails,
 * publishes any inline image and loads the image whole, as a copy that never was would be.
 */
async function bringUp(
  ctx: OpContext,
  vm: VmRecord,
  launch: VmLaunch,
  holding: Holding,
  inline: HeldObject | undefined,
): Promise<LoadTiming> {
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
      const out = await apply(id, launch.image, inline);
      ctx.held.set(id, { ...held, image: launch.image.manifest });
      return { path: 'apply', ...(inline ? { inline: true } : {}), ...out.timing };
    } catch (error) {
      ctx.log.warn(
        { node: ctx.self, vm: id, err: (error as Error).message },
        'final image not applied to the held copy; loading it whole',
      );
    }
  }
  // A whole load reads the image chain from S3: an image still in the item goes there first.
  await sealInlineImage(ctx, vm);
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
  const reason = abortReason(action.order, ctx.clock());
  await ctx.step('abort', id, () => abortMigration(ctx.clients, id, action.order.id, ctx.clock()));
  ctx.log.info({ node: ctx.self, vm: id, migration: action.order.id, reason }, 'migration aborted');
  await history(ctx, id, action.order, { outcome: 'aborted', endedAt: ctx.clock(), by: ctx.self, reason });
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
