// How a node attaches a registered qemu image: a kernel image becomes -kernel/-initrd/-append from
// the node's cache, a disk a read-only virtio drive in its format, the built-in counter its floppy;
// an unregistered name or params for an image that takes none are bad input.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { guestMedia } from '../../node-agent/drivers/qemu/registered-images.ts';
import type { ImageRole } from '../../shared/qemu-images.ts';
import { InvalidInput } from '../../shared/storage/errors.ts';
import { type ImageRecord, imageRecordOf, storeImageFiles } from '../../shared/storage/image-registry.ts';
import { memoryBlobs } from '../../shared/storage/image-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'seesaw-qemu-media-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function stored(
  name: string,
  format: ImageRecord['format'],
  files: Partial<Record<'disk' | 'kernel' | 'initrd', Uint8Array>>,
  cmdline?: string,
) {
  const blobs = memoryBlobs();
  const contents = new Map(Object.entries(files)) as Map<ImageRole, Uint8Array>;
  const record = imageRecordOf({ name, format, contents, cmdline, virtualBytes: 0, createdAt: 0 });
  await storeImageFiles(blobs, record, contents);
  return blobs;
}

describe('guestMedia', () => {
  it('boots a kernel image with its initrd and command line from the cache', async () => {
    const kernel = new Uint8Array([1, 2, 3]);
    const initrd = new Uint8Array([4, 5]);
    const blobs = await stored('k', 'kernel', { kernel, initrd }, 'console=ttyS0 root=/dev/ram0');
    const media = await guestMedia(blobs, join(dir, 'k'), 'k');
    expect(media.kernel?.append).toBe('console=ttyS0 root=/dev/ram0');
    expect(readFileSync(media.kernel!.path)).toEqual(Buffer.from(kernel));
    expect(readFileSync(media.kernel!.initrd!)).toEqual(Buffer.from(initrd));
    expect(media.disk).toBeUndefined();
  });

  it('attaches a qcow2 disk read-only in its format', async () => {
    const disk = new Uint8Array([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]);
    const media = await guestMedia(await stored('q', 'qcow2', { disk }), join(dir, 'q'), 'q');
    expect(media.disk).toMatchObject({ format: 'qcow2', readonly: true });
    expect(readFileSync(media.disk!.path)).toEqual(Buffer.from(disk));
  });

  it('writes the built-in counter floppy without the store', async () => {
    const media = await guestMedia(memoryBlobs(), join(dir, 'c'), 'counter', { hz: 60 });
    expect(media.floppy).toMatch(/counter-60\.img$/);
  });

  it('refuses an image that is not registered, and params for a registered image', async () => {
    await expect(guestMedia(memoryBlobs(), join(dir, 'n'), 'nope')).rejects.toThrow(InvalidInput);
    const blobs = await stored('d', 'raw', { disk: new Uint8Array(512) });
    await expect(guestMedia(blobs, join(dir, 'd'), 'd', { hz: 50 })).rejects.toThrow(InvalidInput);
  });
});
