// The qemu image registry against dynalite and s3rver (the real AWS SDK): a name is claimed once,
// listed through the kind index, forgotten only at the checksum it was read with; the files and
// image.json in the bucket are read back checksum-verified; and the VMs using an image are found.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed, Corrupt, NotFound } from '../../shared/storage/errors.ts';
import {
  deleteImageFiles,
  findImage,
  forgetImage,
  imageManifestKey,
  imageRecordOf,
  listRegisteredImages,
  readImageFile,
  readImageManifest,
  registerImage,
  storeImageFiles,
  vmsUsingImage,
} from '../../shared/storage/image-registry.ts';
import { type BlobStore, sha256 } from '../../shared/storage/image-store.ts';
import { createVm } from '../../shared/storage/vms.ts';
import { freshImageStores } from '../support/stores.ts';

/** A kernel image record with its files' bytes, as POST /v1/images builds it. */
function aKernelImage(name: string, kernel: Uint8Array, initrd: Uint8Array) {
  const contents = new Map<'kernel' | 'initrd', Uint8Array>([
    ['kernel', kernel],
    ['initrd', initrd],
  ]);
  const virtualBytes = kernel.byteLength + initrd.byteLength;
  const record = imageRecordOf({
    name,
    format: 'kernel',
    contents,
    cmdline: 'console=ttyS0',
    virtualBytes,
    createdAt: 1000,
  });
  return { record, contents };
}

describe('qemu image registry on dynalite and s3rver', () => {
  let clients: Clients;
  let blobs: BlobStore;
  beforeAll(async () => {
    ({ clients, blobs } = await freshImageStores());
  });

  it('registers a name once, finds and lists it, and forgets it only at the checksum it holds', async () => {
    const { record } = aKernelImage('k1', new Uint8Array([1, 2, 3]), new Uint8Array([4]));
    await registerImage(clients, record);
    await expect(registerImage(clients, { ...record, sha256: 'other' })).rejects.toThrow(ConditionFailed);
    expect(await findImage(clients, 'k1')).toEqual(record);
    expect((await listRegisteredImages(clients)).map((i) => i.name)).toContain('k1');
    await expect(forgetImage(clients, 'k1', 'not-its-checksum')).rejects.toThrow(ConditionFailed);
    expect(await findImage(clients, 'k1')).toEqual(record);
    await forgetImage(clients, 'k1', record.sha256);
    expect(await findImage(clients, 'k1')).toBeUndefined();
  });

  it('stores the files and image.json, reads them back verified, and deletes them all', async () => {
    const { record, contents } = aKernelImage('k2', new Uint8Array(70_000).fill(7), new Uint8Array([9, 9]));
    await storeImageFiles(blobs, record, contents);
    const manifest = await readImageManifest(blobs, 'k2');
    expect(manifest).toEqual({
      name: 'k2',
      format: 'kernel',
      files: record.files,
      cmdline: 'console=ttyS0',
      sha256: record.sha256,
    });
    const kernel = manifest.files.find((f) => f.role === 'kernel')!;
    expect(await readImageFile(blobs, kernel)).toEqual(contents.get('kernel'));
    await expect(readImageFile(blobs, { ...kernel, sha256: sha256(new Uint8Array([0])) })).rejects.toThrow(
      Corrupt,
    );
    expect(await deleteImageFiles(blobs, 'k2')).toBe(3);
    await expect(readImageManifest(blobs, 'k2')).rejects.toThrow(NotFound);
    await expect(readImageFile(blobs, kernel)).rejects.toThrow(Corrupt);
  });

  it('refuses an image.json whose contents do not match its own checksum', async () => {
    const { record } = aKernelImage('k3', new Uint8Array([1]), new Uint8Array([2]));
    const forged = { format: 'seesaw-qemu-image/1', image: { ...record, cmdline: 'init=/bin/sh' } };
    await blobs.put(imageManifestKey('k3'), Buffer.from(JSON.stringify(forged)));
    await expect(readImageManifest(blobs, 'k3')).rejects.toThrow(Corrupt);
  });

  it('finds the VMs whose guest is qemu:<name>, whatever their state, and no others', async () => {
    await createVm(clients, { id: 'u1', owner: 'n1', guest: { kind: 'qemu:disk-a' }, memPages: 256 }, 1);
    await createVm(clients, { id: 'u2', owner: 'n1', guest: { kind: 'qemu:disk-ab' }, memPages: 256 }, 1);
    await createVm(clients, { id: 'u3', owner: 'n2', guest: { kind: 'cpu' }, memPages: 16 }, 1);
    await createVm(clients, { id: 'u0', owner: 'n2', guest: { kind: 'qemu:disk-a' }, memPages: 256 }, 1);
    expect(await vmsUsingImage(clients, 'disk-a')).toEqual(['u0', 'u1']);
    expect(await vmsUsingImage(clients, 'disk-b')).toEqual([]);
  });
});
