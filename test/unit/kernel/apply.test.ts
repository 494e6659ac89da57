import { describe, expect, it } from 'vitest';
import type { SeesawKernel } from '../../../node-agent/kernel/index.ts';
import type { VmLaunch } from '../../../node-agent/kernel/types.ts';
import { Conflict, Corrupt } from '../../../shared/storage/errors.ts';
import { createImageStoreOn, memoryBlobs } from '../../../shared/storage/image-store.ts';
import { aClock, aKernel, countedStore, runTicks, type TestClock } from './fixtures.ts';

type TestKernel = SeesawKernel & { clock: TestClock };

const GUESTS: { name: string; launch: Omit<VmLaunch, 'fence'> }[] = [
  {
    name: 'a memory guest with a small working set in a larger resident memory',
    launch: {
      id: 'm',
      guest: { kind: 'memory', params: { wsPages: 4, rate: 20_000, residentPages: 24 } },
      memPages: 24,
    },
  },
  {
    name: 'an io guest writing its disk',
    launch: { id: 'd', guest: { kind: 'io', params: { rate: 5_000, diskMiB: 4 } }, memPages: 4 },
  },
];

/**
 * Source and an uninterrupted reference run the same guest; the source's first image (the
 * pre-copy) is restored paused on the target, the source runs on, stops, writes the final delta.
 */
async function switchover(launch: Omit<VmLaunch, 'fence'>, ticksAfterPrecopy = 3) {
  const { store, reads } = countedStore();
  const clock = aClock();
  const source = aKernel(store, { clock, nodeId: 'a' });
  const target = aKernel(store, { clock, nodeId: 'b' });
  const reference = aKernel(createImageStoreOn(memoryBlobs()), { clock: aClock(), nodeId: 'r' });
  await source.start({ ...launch, fence: 1 });
  await reference.start({ ...launch, fence: 1 });
  const both = (n: number) => {
    runTicks(source, n);
    runTicks(reference, n);
  };
  both(5);
  const precopy = await source.checkpoint(launch.id, 'delta');
  await target.start({ ...launch, fence: 2, image: precopy.image, paused: true });
  both(ticksAfterPrecopy);
  source.pause(launch.id);
  const final = await source.checkpoint(launch.id, 'delta');
  return { source, target, reference, precopy, final, reads };
}

const continueTogether = (target: TestKernel, reference: TestKernel, id: string, n: number) => {
  target.resume(id);
  runTicks(target, n);
  runTicks(reference, n);
  return [target.digest(id), reference.digest(id)];
};

describe('applying the final delta to a paused copy', () => {
  it.each(GUESTS)(
    'brings $name up to the final image, reading only that image, and it runs on with the digest of an uninterrupted run',
    async ({ launch }) => {
      const { target, reference, final, reads } = await switchover(launch);
      reads.length = 0;
      const applied = await target.applyImage!(launch.id, final.image);
      // The final delta carries its blocks in its manifest object: one read, no older pack.
      expect(reads).toEqual([final.image.manifest]);
      expect(applied.pages).toBeGreaterThan(0);
      expect(applied.bytes).toBeLessThanOrEqual(final.bytes);
      expect(target.digest(launch.id)).toBe(final.image.digest);
      expect(target.vtod(launch.id)).toBeGreaterThanOrEqual(final.image.vtod);
      const [moved, unmoved] = continueTogether(target, reference, launch.id, 6);
      expect(moved).toBe(unmoved);
    },
  );

  it('reads the pages of a copy that changed since its image again, and still continues the run exactly', async () => {
    const launch = GUESTS[0]!.launch;
    // The source stops right after the pre-copy: the final delta rewrites no page.
    const { target, reference, precopy, final, reads } = await switchover(launch, 0);
    // The copy runs (diverges from both images) and stops again before the final delta arrives.
    target.resume(launch.id);
    runTicks(target, 4);
    target.pause(launch.id);
    expect(target.digest(launch.id)).not.toBe(final.image.digest);
    reads.length = 0;
    await target.applyImage!(launch.id, final.image);
    expect(reads).toContain(precopy.image.manifest.replace('manifest.json', 'pack-0.bin'));
    expect(target.digest(launch.id)).toBe(final.image.digest);
    const [moved, unmoved] = continueTogether(target, reference, launch.id, 5);
    expect(moved).toBe(unmoved);
  });

  it('brings a copy to any image of its VM, zeroing the pages that image does not have', async () => {
    const launch = GUESTS[0]!.launch;
    const { store } = countedStore();
    const source = aKernel(store, { nodeId: 'a' });
    const reference = aKernel(createImageStoreOn(memoryBlobs()), { nodeId: 'r' });
    await source.start({ ...launch, fence: 1 });
    await reference.start({ ...launch, fence: 1 });
    source.pause(launch.id);
    // Before the guest ran, its working set is all zeros: the first image lacks those pages.
    const first = await source.checkpoint(launch.id, 'full');
    source.resume(launch.id);
    runTicks(source, 3);
    source.pause(launch.id);
    const later = await source.checkpoint(launch.id, 'delta');
    const target = aKernel(store, { nodeId: 'b' });
    await target.start({ ...launch, fence: 2, image: later.image, paused: true });
    const applied = await target.applyImage!(launch.id, first.image);
    expect(applied.bytes).toBe(0);
    expect(applied.pages).toBeGreaterThanOrEqual(4);
    const [moved, unmoved] = continueTogether(target, reference, launch.id, 4);
    expect(moved).toBe(unmoved);
  });

  it('refuses a running copy, and leaves a copy that fails the digest check unusable for another apply', async () => {
    const launch = GUESTS[0]!.launch;
    const { target, final } = await switchover(launch);
    target.resume(launch.id);
    await expect(target.applyImage!(launch.id, final.image)).rejects.toBeInstanceOf(Conflict);
    target.pause(launch.id);
    const forged = { ...final.image, digest: '0000000000000000' };
    await expect(target.applyImage!(launch.id, forged)).rejects.toThrow(
      new Corrupt(
        `image ${final.image.manifest} applies to digest ${final.image.digest}; the table recorded ${forged.digest}`,
      ),
    );
    await expect(target.applyImage!(launch.id, final.image)).rejects.toBeInstanceOf(Conflict);
  });

  it('refuses an image of another VM before writing anything, so the copy can still be brought up to date', async () => {
    const launch = GUESTS[0]!.launch;
    const { source, target, final } = await switchover(launch);
    await source.start({ ...launch, id: 'other', fence: 1 });
    const other = await source.checkpoint('other', 'full');
    await expect(target.applyImage!(launch.id, other.image)).rejects.toBeInstanceOf(Corrupt);
    await target.applyImage!(launch.id, final.image);
    expect(target.digest(launch.id)).toBe(final.image.digest);
  });
});
