// Bringing a loaded copy of a VM up to a newer image of the same VM in place: a migration target,
// restored paused from the pre-copy, applies the final delta instead of restoring from scratch.
// Only the blocks whose manifest entries differ from the copy's image (or that changed in the copy
// since) are read; each is checksum-verified, and the guest must then digest to the image's digest.
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import type { ImageRef } from '../../shared/domain/vm-state.ts';
import { Conflict, Corrupt, InvalidInput } from '../../shared/storage/errors.ts';
import type { HeldObject, ImageManifest, PageEntry } from '../../shared/storage/image-store.ts';
import { growMemory } from './guest.ts';
import { sentPages } from './images.ts';
import { callAlone, type KernelState, type Vm } from './state.ts';
import type { ApplyResult } from './types.ts';

/** Where each block of an image lies: packs are immutable, so the same place and checksum is the same contents. */
const placeOf = (m: ImageManifest, [, p, o, h]: PageEntry) => `${m.packs[p]}@${o}#${h}`;
const placesOf = (m: ImageManifest, entries: readonly PageEntry[]) =>
  new Map(entries.map((e) => [e[0], placeOf(m, e)]));

/** Blocks that `to` has elsewhere than `from`, or that only one of them has, and the `touched` ones. */
export function changedBlocks(
  from: ReadonlyMap<number, string>,
  to: ReadonlyMap<number, string>,
  touched: Iterable<number>,
): Set<number> {
  const out = new Set<number>(touched);
  for (const [i, place] of to) if (from.get(i) !== place) out.add(i);
  for (const i of from.keys()) if (!to.has(i)) out.add(i);
  return out;
}

/** See Kernel.applyImage. */
export async function applyImage(
  state: KernelState,
  vm: Vm,
  ref: ImageRef,
  heldObject?: HeldObject,
): Promise<ApplyResult> {
  const held = vm.manifest;
  if (!held || !vm.paused || vm.error)
    throw new Conflict(`vm ${vm.id} holds no paused copy of an image to bring up to date`);
  const t0 = performance.now();
  // Whatever changed in the copy since its image (nothing, for a copy that never ran) is read again.
  vm.tracker.scan(vm.guest.memory.buffer);
  const touchedPages = vm.tracker.pagesFor('delta');
  const touchedDisk = [...vm.disk.changedBlocks()];
  const memPages = vm.guest.memory.buffer.byteLength / PAGE_BYTES;
  let pages = new Set<number>();
  let disk = new Set<number>();
  const heldPlaces = placesOf(held, held.pages);
  const touched = new Set(touchedPages);
  const memory = new Uint8Array(vm.guest.memory.buffer);
  const image = await state.images.getImage(
    ref.manifest,
    (m) => {
      if (m.vm !== vm.id) throw new Corrupt(`image ${ref.manifest} belongs to VM ${m.vm}, not ${vm.id}`);
      if (m.seq !== ref.seq) throw new Corrupt(`image ${ref.manifest} has seq ${m.seq}, not ${ref.seq}`);
      if (m.guest.kind !== vm.spec.kind)
        throw new InvalidInput(`image of ${vm.id} runs ${m.guest.kind}, not ${vm.spec.kind}`);
      if (m.disk.bytes !== vm.disk.bytes)
        throw new Conflict(
          `image ${ref.manifest} has a ${m.disk.bytes}-byte disk, the copy ${vm.disk.bytes}`,
        );
      pages = changedBlocks(heldPlaces, placesOf(m, m.pages), touchedPages);
      disk = changedBlocks(placesOf(held, held.disk.blocks), placesOf(m, m.disk.blocks), touchedDisk);
      // A sub-page delta against the very page the copy holds (untouched since) applies to it in place.
      const base = (i: number, entry: PageEntry) =>
        !touched.has(i) && heldPlaces.get(i) === placeOf(m, entry)
          ? memory.slice(i * PAGE_BYTES, (i + 1) * PAGE_BYTES)
          : undefined;
      return { pages, disk, base };
    },
    heldObject,
  );
  const t1 = performance.now();
  if (state.vms.get(vm.id) !== vm || !vm.paused || vm.manifest !== held || vm.error)
    throw new Conflict(`vm ${vm.id} changed while its image was read`);
  const m = image.manifest;
  const size = Math.max(m.memPages, memPages, vm.memLimit);
  for (const p of pages)
    if (!(p < size)) throw new Corrupt(`image ${ref.manifest} lists page ${p} of a ${size}-page memory`);
  // From here the copy is neither its old image nor (until the digest agrees) the new one.
  vm.manifest = undefined;
  growMemory(vm.guest.memory, size);
  const bytes = new Uint8Array(vm.guest.memory.buffer);
  for (const p of pages) {
    const page = image.pages.get(p);
    if (page) bytes.set(page, p * PAGE_BYTES);
    else bytes.fill(0, p * PAGE_BYTES, (p + 1) * PAGE_BYTES);
  }
  for (const b of disk)
    if (!vm.disk.setImaged(b, image.disk.get(b)))
      throw new Conflict(`the node's memory cannot hold disk block ${b} of ${vm.id}`);
  vm.guest.restoreGlobals(m.globals);
  const digest = callAlone(state, vm, 'restore', () => vm.guest.digest());
  if (digest !== m.digest)
    throw new Corrupt(`image ${ref.manifest} applies to digest ${digest}, not ${m.digest}`);
  if (digest !== ref.digest)
    throw new Corrupt(`image ${ref.manifest} applies to digest ${digest}; the table recorded ${ref.digest}`);
  vm.tracker.acceptPages(vm.guest.memory.buffer, pages);
  // The guest's clock continues from the image's, never behind it, whatever this node's clock says.
  const now = state.options.clock();
  vm.vtodOffset = Math.max(m.vtod, now + m.vtodOffset) - now;
  vm.lastVtod = m.vtod;
  vm.seq = m.seq;
  vm.lastDigest = m.digest;
  vm.digestFresh = true;
  vm.manifest = m;
  sentPages(m, image.pages, vm.sent);
  return {
    pages: pages.size + disk.size,
    bytes: image.bytes,
    timing: { downloadMs: t1 - t0, applyMs: performance.now() - t1 },
  };
}
