// Coded images (format seesaw-image/4) through the kernel: the hot guest's memory is stored
// compressed (a fraction of its pages' bytes) and restores exactly on another node, while a guest
// that fills its memory with random bytes is stored raw (no coded entry a reader must decode).
import { describe, expect, it } from 'vitest';
import type { VmLaunch } from '../../../node-agent/kernel/types.ts';
import { PAGE_BYTES } from '../../../shared/domain/guests.ts';
import { createImageStoreOn, type ImageManifest, memoryBlobs } from '../../../shared/storage/image-store.ts';
import { wasmOf } from '../../support/hostile.ts';
import { aClock, aKernel, runTicks } from './fixtures.ts';

const HOT: Omit<VmLaunch, 'fence'> = {
  id: 'hot',
  guest: { kind: 'memory', params: { wsPages: 64, rate: 200_000 } },
  memPages: 66,
};

/** Fills pages 1..7 with xorshift64 output every slice: memory that does not compress. */
const RANDOM_GUEST = `(module
  (memory (export "memory") 8)
  (global $x (export "x") (mut i64) (i64.const 0x2545F4914F6CDD1D))
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param $budget i32) (result i32)
    (local $a i32) (local $x i64)
    (local.set $x (global.get $x))
    (local.set $a (i32.const 65536))
    (loop $fill
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (i64.store (local.get $a) (local.get $x))
      (local.set $a (i32.add (local.get $a) (i32.const 8)))
      (br_if $fill (i32.lt_u (local.get $a) (i32.const 524288))))
    (global.set $x (local.get $x))
    (i32.const 1))
  (func (export "digest") (result i64) (global.get $x)))`;

const manifestOf = (blobs: ReturnType<typeof memoryBlobs>, key: string): ImageManifest => {
  const body = Buffer.from(blobs.objects.get(key)!.body);
  const end = body.indexOf(0x0a);
  return JSON.parse(body.subarray(0, end < 0 ? body.length : end).toString('utf8'));
};

describe('coded images', () => {
  it("stores the hot guest's pages coded, in under a quarter of their bytes, and restores them exactly", async () => {
    const blobs = memoryBlobs();
    const store = createImageStoreOn(blobs);
    const clock = aClock();
    const source = aKernel(store, { clock, nodeId: 'a' });
    const reference = aKernel(createImageStoreOn(memoryBlobs()), { clock: aClock(), nodeId: 'r' });
    await source.start({ ...HOT, fence: 1 });
    await reference.start({ ...HOT, fence: 1 });
    runTicks(source, 5);
    runTicks(reference, 5);
    // the pre-copy's first estimate: its pages code to under a quarter
    expect(source.wireRatio!(HOT.id)).toBeLessThan(0.25);
    const full = await source.checkpoint(HOT.id, 'full');
    const m = manifestOf(blobs, full.image.manifest);
    expect(m.format).toBe('seesaw-image/4');
    // the 64 working-set pages are coded; the bytes written are those of the coded blocks
    const coded = m.pages.filter((e) => e.length === 7 && e[5] === null && e[6] === 'br');
    expect(coded.length).toBeGreaterThanOrEqual(64);
    expect(full.bytes).toBeLessThan((64 * PAGE_BYTES) / 4);
    runTicks(source, 2);
    runTicks(reference, 2);
    source.pause(HOT.id);
    const delta = await source.checkpoint(HOT.id, 'delta', { final: true });
    expect(manifestOf(blobs, delta.image.manifest).format).toBe('seesaw-image/4');
    const target = aKernel(store, { nodeId: 'b' });
    await target.start({ ...HOT, fence: 2, image: delta.image });
    expect(target.digest(HOT.id)).toBe(delta.image.digest);
    runTicks(target, 3);
    runTicks(reference, 3);
    expect(target.digest(HOT.id)).toBe(reference.digest(HOT.id));
  });

  it('stores random memory raw, so that nothing a reader must decode was coded for nothing', async () => {
    const blobs = memoryBlobs();
    const store = createImageStoreOn(blobs);
    await store.putModule('random', await wasmOf(RANDOM_GUEST));
    const launch = { id: 'rnd', guest: { kind: 'module:random' }, memPages: 8 };
    const source = aKernel(store, { nodeId: 'a' });
    await source.start({ ...launch, fence: 1 });
    runTicks(source, 2);
    expect(source.wireRatio!('rnd')).toBe(1);
    const full = await source.checkpoint('rnd', 'full');
    runTicks(source, 2);
    source.pause('rnd');
    const delta = await source.checkpoint('rnd', 'delta', { final: true });
    for (const image of [full, delta]) {
      const m = manifestOf(blobs, image.image.manifest);
      expect(m.format).not.toBe('seesaw-image/4');
      expect(m.pages.every((e) => e.length === 4)).toBe(true);
      // seven pages of random bytes, whole: nothing saved, nothing lost
      expect(image.bytes).toBeGreaterThanOrEqual(7 * PAGE_BYTES);
    }
    const target = aKernel(store, { nodeId: 'b' });
    await target.start({ ...launch, fence: 2, image: delta.image });
    expect(target.digest('rnd')).toBe(delta.image.digest);
  });
});
