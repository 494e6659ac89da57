// One VM's operation: re-read the item, decide with the protocol, act. A step whose fenced write
// fails (someone else moved the VM on) loops back to a fresh read, so the node always ends in
// the state the table asks for, or does nothing. Each action has its own handler, named for it.
import { type Action, awaitsPeer, bookedByEarlierRun, nextAction } from '../../shared/domain/protocol.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { findVm, type VmRecord } from '../../shared/storage/vms.ts';
import {
  checkpoint,
  deleteVm,
  fail,
  failureOf,
  markRunningAndResume,
  recover,
  resumeHeld,
  start,
  stopGuest,
  suspend,
  suspendFromImage,
} from './lifecycle.ts';
import { abort, migrateIn, migrateOut, prepareIn, settle } from './migration.ts';
import type { Handler, OpContext } from './types.ts';

export { ForeignStart } from './lifecycle.ts';

const MAX_ROUNDS = 4;

type Kind = Action['kind'];

/** The handlers of actions on an existing VM item, keyed by action. */
const HANDLERS: { [K in Exclude<Kind, 'none' | 'stop'>]: Handler<K> } = {
  start,
  fail,
  markRunning: markRunningAndResume,
  resume: resumeHeld,
  recover,
  checkpoint,
  migrateOut,
  prepareIn,
  migrateIn,
  abort,
  settle,
  suspend,
  suspendFromImage,
  delete: deleteVm,
};

/**
 * Brings one VM in line with the table; `hint` is the (eventually consistent) index copy, if any;
 * `fresh`, a consistent read the caller just took, stands in for the first read. Resolves with the
 * item as last read (the hint when it showed nothing to do).
 */
export async function runVmOp(
  ctx: OpContext,
  id: string,
  hint: VmRecord | undefined,
  fresh?: VmRecord,
): Promise<VmRecord | undefined> {
  const decide = (vm: VmRecord | undefined) =>
    nextAction({
      vm,
      self: ctx.self,
      held: ctx.held.get(id),
      now: ctx.clock(),
      checkpointDue: ctx.clock() - (ctx.lastCheckpoint.get(id) ?? 0) >= ctx.config.checkpointMs,
      busyElsewhere: vm !== undefined && bookedByEarlierRun(vm, ctx.records.values(), ctx.self),
      ...failureOf(ctx, id),
    });
  // Skip the consistent read when the index copy says there is nothing to do.
  if (hint && decide(hint).kind === 'none') return watchIfWaiting(ctx, hint);
  let vm: VmRecord | undefined;
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    vm = round === 0 && fresh ? fresh : await findVm(ctx.clients, id);
    if (vm) ctx.records.set(id, vm);
    const action = decide(vm);
    if (action.kind === 'none') return watchIfWaiting(ctx, vm);
    try {
      const again = await perform(ctx, action, vm, id);
      if (!again) return vm;
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      ctx.log.debug(
        { node: ctx.self, vm: id, action: action.kind, transition: error.transition },
        'lost a race; re-reading',
      );
    }
  }
  return vm;
}

/** A node that waits for the other side of a switchover watches the VM item (see awaitsPeer). */
function watchIfWaiting(ctx: OpContext, vm: VmRecord | undefined) {
  if (vm && awaitsPeer(vm, ctx.self, ctx.held.get(vm.id))) ctx.watch(vm.id, vm);
  return vm;
}

/** Performs one action by its handler; returns true when the VM needs another decision right away. */
async function perform(ctx: OpContext, action: Action, vm: VmRecord | undefined, id: string) {
  if (action.kind === 'none') return false;
  if (action.kind === 'stop') {
    ctx.log.info({ node: ctx.self, vm: id, why: action.why }, 'stopping guest');
    stopGuest(ctx, id);
    return true;
  }
  if (!vm) return false;
  const handler = HANDLERS[action.kind] as Handler<typeof action.kind>;
  return handler(ctx, action as never, vm, id);
}
