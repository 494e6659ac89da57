// The migration handlers: the source's pre-copy, stop and final delta; the target's load, take
// and run; and the expired orders anyone may abort or settle. Each table write is conditional on
// the fence and the order, so a step repeated or raced fails instead of forking the VM.
import { bestPlacement, placementVmOf } from '../../shared/domain/placement.ts';
import { afterRound, dirtyRateOf, nextPrecopyStep } from '../../shared/domain/precopy.ts';
import { takeDeadline } from '../../shared/domain/protocol.ts';
import type { MigrationOrder } from '../../shared/domain/vm-state.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { listNodes, placementNode } from '../../shared/storage/nodes.ts';
import {
  abortMigration,
  markImageReady,
  settleMigration,
  takeOwnership,
  type VmRecord,
} from '../../shared/storage/vms.ts';
import { Crash, Fenced } from './faults.ts';
import { launchOf, load, resumeGuest, stopGuest } from './lifecycle.ts';
import type { Handler, OpContext, Outbound } from './types.ts';

/** Source side: pre-copy while running, stop, final delta, IMAGE_READY, forget. */
export const migrateOut: Handler<'migrateOut'> = async (ctx, action, vm, id) => {
  const progress = ctx.outbound.get(id) ?? (await precopyAndStop(ctx, vm));
  const final = await ctx.step(
    'finalDelta',
    id,
    () => ctx.kernel.checkpoint(id, 'delta'),
    (r) => r.image,
  );
  const bytes = { precopy: progress.precopy, final: final.bytes };
  const now = ctx.clock();
  await ctx.step(
    'markImageReady',
    id,
    () =>
      markImageReady(ctx.clients, {
        id,
        order: action.order,
        fence: vm.fence,
        image: final.image,
        stoppedAt: progress.stoppedAt,
        bytes,
        now,
        deadline: takeDeadline(now, vm.memPages, ctx.config.timings),
      }),
    () => final.image,
  );
  await ctx.step('stopSource', id, () => stopGuest(ctx, id));
  ctx.log.info(
    { node: ctx.self, vm: id, to: action.order.to, migration: action.order.id, bytes },
    'image handed over',
  );
  return false;
};

/** Pages per ms assumed for the image store before a round has measured it (64 MB/s). */
const PRIOR_TRANSFER_PAGES_PER_MS = 1;

/**
 * Pre-copy while the guest runs, for as long as a round shrinks the remainder enough (see
 * shared/domain/precopy.ts), then pause: what is dirty now is the final delta.
 */
async function precopyAndStop(ctx: OpContext, vm: VmRecord): Promise<Outbound> {
  const id = vm.id;
  const seen = ctx.dirt(id);
  let state: Parameters<typeof afterRound>[0] = {
    rounds: 0,
    remainderPages: seen?.residentPages ?? vm.memPages,
    transferPagesPerMs: PRIOR_TRANSFER_PAGES_PER_MS,
    dirtyPagesPerMs: seen ? dirtyRateOf(seen) : 0,
    workingSetPages: seen?.dirtiedPages ?? 0,
  };
  let precopyBytes = 0;
  let decision = nextPrecopyStep(state);
  while (decision.kind === 'round') {
    const startedAt = ctx.clock();
    const result = await ctx.step(
      'precopy',
      id,
      () => ctx.kernel.checkpoint(id, 'delta'),
      (r) => r.image,
    );
    precopyBytes += result.bytes;
    state = afterRound(state, { pages: result.pages, ms: ctx.clock() - startedAt });
    decision = nextPrecopyStep(state);
  }
  await ctx.step('pause', id, () => ctx.kernel.pause(id));
  const h = ctx.held.get(id);
  if (h) h.paused = true;
  const progress = { stoppedAt: ctx.clock(), precopy: precopyBytes };
  ctx.outbound.set(id, progress);
  ctx.log.debug(
    {
      node: ctx.self,
      vm: id,
      rounds: state.rounds,
      why: decision.why,
      predictedPages: decision.predictedPages,
    },
    'pre-copy done; stopping the guest',
  );
  return progress;
}

/** Target side: load paused from the final image (the kernel adjusts the vTOD), take ownership, run. */
export const migrateIn: Handler<'migrateIn'> = async (ctx, action, vm, id) => {
  const order = action.order;
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
    takeOwnership(ctx.clients, {
      id,
      migrationId: order.id,
      fence: vm.fence,
      node: ctx.self,
      now,
      cooldownUntil: now + ctx.config.cooldownMs,
    }),
  );
  await ctx.step('resumeTarget', id, () => resumeGuest(ctx, id));
  const runningAt = ctx.clock();
  ctx.lastCheckpoint.set(id, runningAt);
  await history(ctx, id, order, { outcome: 'completed', endedAt: runningAt, runningAt, by: ctx.self });
  ctx.log.info(
    {
      node: ctx.self,
      vm: id,
      from: order.from,
      migration: order.id,
      bytes: order.bytes,
      downtimeMs: order.stoppedAt === undefined ? undefined : runningAt - order.stoppedAt,
    },
    'migrated in',
  );
  return false;
};

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
