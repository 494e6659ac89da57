// A migration's final delta may travel inside the VM item instead of S3 (see markImageReady and
// docs/protocol.md): then the item is its only durable copy until a node publishes it to its S3
// key and drops it from the item. These helpers do that, and every path that reads a VM's images
// from S3 (a whole load, a restore, a pre-copy that builds on them) publishes first.
import { createImageStore, type HeldObject } from '../../shared/storage/image-store.ts';
import { dropInlineImage, inlineImageOf } from '../../shared/storage/switchover.ts';
import type { VmRecord } from '../../shared/storage/vms.ts';
import { Crash, Fenced } from './faults.ts';
import type { OpContext } from './types.ts';

/** Writes a held image object to its S3 key (once: a copy already there is kept). */
export function publishHeld(ctx: OpContext, vm: string, held: HeldObject): Promise<void> {
  const store = ctx.images?.publish ? ctx.images : createImageStore(ctx.clients);
  return ctx.step('publishInline', vm, () => store.publish!(held));
}

/**
 * Puts the item's inline image on S3 and drops it from the item (a repeat does both again
 * harmlessly). A malformed one (a buggy peer's) is left alone and logged: it can never be used, and
 * the VM's image then fails to load like any broken image. True when there was one to publish.
 */
export async function sealInlineImage(ctx: OpContext, vm: VmRecord): Promise<boolean> {
  const { held, malformed } = inlineImageOf(vm);
  if (malformed) ctx.log.warn({ node: ctx.self, vm: vm.id, reason: malformed }, 'inline image ignored');
  if (!held) return false;
  await publishHeld(ctx, vm.id, held);
  await ctx.step('dropInline', vm.id, () => dropInlineImage(ctx.clients, vm.id, held.key));
  return true;
}

/** As sealInlineImage where the copy in the item is durable enough meanwhile: a failure is only logged. */
export async function sealQuietly(ctx: OpContext, vm: VmRecord): Promise<void> {
  try {
    await sealInlineImage(ctx, vm);
  } catch (error) {
    if (error instanceof Crash || error instanceof Fenced) throw error;
    ctx.log.warn(
      { node: ctx.self, vm: vm.id, err: (error as Error).message },
      'inline image not published yet; the item keeps it',
    );
  }
}
