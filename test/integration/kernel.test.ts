// The done-when of the kernel issue, through real s3rver: exact digests across suspend/resume,
// corruption detected on resume, and a guest clock that never runs backwards.
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ImageRef } from '../../shared/domain/vm-state.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { Corrupt } from '../../shared/storage/errors.ts';
import type { ImageStore } from '../../shared/storage/image-store.ts';
import type { GuestSpec } from '../../shared/storage/vms.ts';
import { wasmOf } from '../support/hostile.ts';
import { freshImageStores } from '../support/stores.ts';
import { aClock, aKernel, CLOCK_GUEST, runTicks, TICK_MS } from '../unit/kernel/fixtures.ts';

const GUESTS: [string, GuestSpec, number][] = [
  ['cpu', { kind: 'cpu', params: { rate: 200_000 } }, 4],
  ['memory', { kind: 'memory', params: { wsPages: 24, rate: 20_000 } }, 32],
  ['io', { kind: 'io', params: { rate: 20_000, diskMiB: 2 } }, 4],
  ['trace', { kind: 'trace', params: { peak: 300_000 }, series: [5, 40, 90, 20, 60] }, 4],
  ['idle', { kind: 'idle' }, 1],
];
const N = 24;
const EVERY = 4;

describe('the kernel with images on s3rver', () => {
  let clients: Clients;
  let images: ImageStore;
  beforeAll(async () => {
    ({ clients, images } = await freshImageStores());
    await images.putModule('clock', await wasmOf(CLOCK_GUEST));
  });

  it.each(GUESTS)(
    'ends the %s guest with the same digest after N ticks whether or not it was suspended and resumed every few ticks',
    async (name, guest, memPages) => {
      const id = `digest-${name}`;
      const steady = aKernel(images, { nodeId: 'steady' });
      await steady.start({ id: `${id}-steady`, fence: 1, guest, memPages });
      runTicks(steady, N);

      let fence = 1;
      let image: ImageRef | undefined;
      let kernel = aKernel(images, { nodeId: 'hop-1' });
      await kernel.start({ id, fence, guest, memPages });
      for (let done = 0; done < N; done += EVERY) {
        runTicks(kernel, EVERY / 2);
        // a pre-copy while it runs, then the final image once paused
        await kernel.checkpoint(id, 'delta');
        runTicks(kernel, EVERY / 2);
        kernel.pause(id);
        image = (await kernel.checkpoint(id, fence % 2 ? 'delta' : 'full')).image;
        kernel.stop(id);
        fence++;
        // each hop runs on a node whose clock is skewed differently
        kernel = aKernel(images, {
          nodeId: `hop-${fence}`,
          clock: aClock(1_700_000_000_000 + (fence % 3) * 7_777),
        });
        await kernel.start({ id, fence, guest, memPages, image });
      }
      expect(image!.digest).toBe(steady.digest(`${id}-steady`));
      expect(kernel.digest(id)).toBe(steady.digest(`${id}-steady`));
      expect(image!.seq).toBe((N / EVERY) * 2);
    },
  );

  it('lets a resumed io guest read back what it wrote to its virtual disk before suspending', async () => {
    // The io guest folds what it reads into its digest; a lost write would change the digest.
    const guest = { kind: 'io', params: { rate: 40_000, diskMiB: 1 } };
    const a = aKernel(images);
    await a.start({ id: 'disk', fence: 1, guest, memPages: 2 });
    runTicks(a, 6);
    a.pause('disk');
    const { image } = await a.checkpoint('disk', 'full');
    const b = aKernel(images, { nodeId: 'node-b' });
    await b.start({ id: 'disk', fence: 2, guest, memPages: 2, image });
    a.resume('disk');
    runTicks(a, 6);
    runTicks(b, 6);
    expect(b.digest('disk')).toBe(a.digest('disk'));
    expect(b.measure()[0]!.ioOps).toBeGreaterThan(0);
  });

  it('detects a corrupted page block on resume and refuses to run the VM', async () => {
    const kernel = aKernel(images);
    const guest = { kind: 'memory', params: { wsPages: 4 } };
    await kernel.start({ id: 'victim', fence: 1, guest, memPages: 8 });
    runTicks(kernel, 3);
    kernel.pause('victim');
    const { image } = await kernel.checkpoint('victim', 'full');
    const pack = 'images/victim/1/1/pack-0.bin';
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: clients.bucketName, Key: pack }));
    const bytes = await object.Body!.transformToByteArray();
    // the guest's pages are stored coded (format 4): a flipped bit fails the decode or the sha256
    const at = bytes.byteLength >> 1;
    bytes[at] = bytes[at]! ^ 1;
    await clients.s3.send(new PutObjectCommand({ Bucket: clients.bucketName, Key: pack, Body: bytes }));
    const other = aKernel(images, { nodeId: 'node-b' });
    const resume = other.start({ id: 'victim', fence: 2, guest: { kind: 'memory' }, memPages: 8, image });
    await expect(resume).rejects.toBeInstanceOf(Corrupt);
    await expect(resume).rejects.toThrow(
      /page \d+ in images\/victim\/1\/1\/pack-0.bin (fails its sha256 check|does not decode)/,
    );
    expect(other.has('victim')).toBe(false);
  });

  it('never moves the guest clock backwards across a resume on a node whose clock is behind', async () => {
    const ahead = aKernel(images, { clock: aClock(2_000_000_000_000) });
    await ahead.start({ id: 'tod', fence: 1, guest: { kind: 'module:clock' }, memPages: 1 });
    runTicks(ahead, 10);
    ahead.pause('tod');
    const { image } = await ahead.checkpoint('tod', 'full');
    expect(image.vtod).toBe(2_000_000_000_000 + 10 * TICK_MS);

    const behindClock = aClock(2_000_000_000_000 - 3_600_000); // an hour behind
    const behind = aKernel(images, { nodeId: 'behind', clock: behindClock });
    await behind.start({ id: 'tod', fence: 2, guest: { kind: 'module:clock' }, memPages: 1, image });
    expect(behind.vtod('tod')).toBeGreaterThanOrEqual(image.vtod);
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      runTicks(behind, 1);
      seen.push(behind.measure()[0]!.vtod);
    }
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(seen.at(-1)! - seen[0]!).toBe(4 * TICK_MS); // and it keeps ticking at the node's pace
    expect(behind.digest('tod')).toBe('0000000000000000'); // the guest never saw time go back
  });
});
