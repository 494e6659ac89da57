// A final delta held back from the image store (it travels in the hand-over item): the kernel
// returns it instead of uploading it, a target's copy applies it without reading the store, it is
// published once and harmlessly again, and the shape a node accepts from an item is checked.
import { describe, expect, it } from 'vitest';
import { Corrupt, InvalidInput } from '../../shared/storage/errors.ts';
import { createImageStoreOn, memoryBlobs } from '../../shared/storage/image-store.ts';
import { INLINE_IMAGE_BYTES, inlineImageOf } from '../../shared/storage/switchover.ts';
import type { VmRecord } from '../../shared/storage/vms.ts';
import { aClock, aKernel, countedStore, runTicks } from './kernel/fixtures.ts';

const LAUNCH = {
  id: 'm',
  guest: { kind: 'memory', params: { wsPages: 4, rate: 2_000, residentPages: 24 } },
  memPages: 24,
};

/** Source, paused copy on the target (from the pre-copy) and an uninterrupted reference. */
async function prepared() {
  const { store, reads, blobs } = countedStore();
  const clock = aClock();
  const source = aKernel(store, { clock, nodeId: 'a' });
  const target = aKernel(store, { clock, nodeId: 'b' });
  const reference = aKernel(createImageStoreOn(memoryBlobs()), { clock: aClock(), nodeId: 'r' });
  await source.start({ ...LAUNCH, fence: 1 });
  await reference.start({ ...LAUNCH, fence: 1 });
  const both = (n: number) => {
    runTicks(source, n);
    runTicks(reference, n);
  };
  both(5);
  const precopy = await source.checkpoint(LAUNCH.id, 'delta');
  await target.start({ ...LAUNCH, fence: 2, image: precopy.image, paused: true });
  both(3);
  source.pause(LAUNCH.id);
  return { store, reads, blobs, source, target, reference };
}

describe('a final delta held back for the hand-over item', () => {
  it('is returned instead of uploaded, applied from the caller without a read, then published', async () => {
    const { store, reads, blobs, source, target, reference } = await prepared();
    const final = await source.checkpoint(LAUNCH.id, 'delta', {
      final: true,
      holdBackBytes: INLINE_IMAGE_BYTES,
    });
    const held = final.held!;
    expect(held.key).toBe(final.image.manifest);
    expect(held.body.byteLength).toBeLessThanOrEqual(INLINE_IMAGE_BYTES);
    expect(final.timing?.uploadMs).toBeLessThan(50);
    expect(blobs.objects.has(held.key)).toBe(false);
    reads.length = 0;
    await target.applyImage!(LAUNCH.id, final.image, held);
    expect(reads).toEqual([]);
    expect(target.digest(LAUNCH.id)).toBe(final.image.digest);
    target.resume(LAUNCH.id);
    runTicks(target, 4);
    runTicks(reference, 4);
    expect(target.digest(LAUNCH.id)).toBe(reference.digest(LAUNCH.id));
    // Published, the image loads whole from the store; a second publish keeps the object.
    await store.publish(held);
    expect((await store.getImage(held.key)).manifest.digest).toBe(final.image.digest);
    await store.publish(held);
    expect(Buffer.from(blobs.objects.get(held.key)!.body).equals(Buffer.from(held.body))).toBe(true);
  });

  it('is uploaded as usual when it is larger than asked', async () => {
    const { blobs, source } = await prepared();
    const final = await source.checkpoint(LAUNCH.id, 'delta', { final: true, holdBackBytes: 16 });
    expect(final.held).toBeUndefined();
    expect(blobs.objects.has(final.image.manifest)).toBe(true);
  });

  it('is refused by the apply when its bytes were spoiled, with the copy left for a whole load', async () => {
    const { source, target } = await prepared();
    const final = await source.checkpoint(LAUNCH.id, 'delta', {
      final: true,
      holdBackBytes: INLINE_IMAGE_BYTES,
    });
    const body = new Uint8Array(final.held!.body);
    body[body.byteLength - 1]! ^= 0x01;
    await expect(target.applyImage!(LAUNCH.id, final.image, { key: final.held!.key, body })).rejects.toThrow(
      Corrupt,
    );
  });

  it('is published only at an image manifest key', async () => {
    const store = createImageStoreOn(memoryBlobs());
    await expect(store.publish({ key: 'modules/x.wasm', body: new Uint8Array(1) })).rejects.toThrow(
      InvalidInput,
    );
    await expect(store.publish({ key: 'images/v/1/2/pack-0.bin', body: new Uint8Array(1) })).rejects.toThrow(
      InvalidInput,
    );
  });
});

describe('the inline image a node accepts from a VM item', () => {
  const vm = (inlineImage: unknown) => ({ id: 'v1', inlineImage }) as unknown as VmRecord;
  const key = 'images/v1/3/7/manifest.json';

  it('takes a binary image of the VM up to the bound', () => {
    expect(inlineImageOf(vm(undefined))).toEqual({});
    const body = new Uint8Array(INLINE_IMAGE_BYTES);
    expect(inlineImageOf(vm({ key, body }))).toEqual({ held: { key, body } });
  });

  it.each([
    ['another VM', { key: 'images/v2/3/7/manifest.json', body: new Uint8Array(4) }, /not an image of v1/],
    [
      'a key that is no manifest',
      { key: 'images/v1/3/7/pack-0.bin', body: new Uint8Array(4) },
      /not an image/,
    ],
    ['a key that is no string', { key: 7, body: new Uint8Array(4) }, /not an image/],
    ['a body that is a string', { key, body: 'AAAA' }, /not binary/],
    ['an empty body', { key, body: new Uint8Array(0) }, /0 bytes/],
    ['a body over the bound', { key, body: new Uint8Array(INLINE_IMAGE_BYTES + 1) }, /at most/],
  ])('calls %s malformed, and offers nothing to use', (_what, inline, reason) => {
    const out = inlineImageOf(vm(inline));
    expect(out.held).toBeUndefined();
    expect(out.malformed).toMatch(reason);
  });
});
