// Registered qemu images on a node: the files of `qemu:<name>` fetched from the image store into a
// local cache (one file per sha256, shared by every VM of the node that boots it), each checked
// against its sha256 before QEMU sees it, and handed to QEMU read-only: a disk is a shared base that
// no guest writes, so a migration carries only QEMU's device and memory stream, never the disk.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_QEMU_IMAGES } from '../../../shared/qemu-images.ts';
import { InvalidInput, NotFound } from '../../../shared/storage/errors.ts';
import { type ImageFile, readImageFile, readImageManifest } from '../../../shared/storage/image-registry.ts';
import { type BlobStore, sha256 } from '../../../shared/storage/image-store.ts';
import { materialiseImage } from './images.ts';
import type { QemuSpawn } from './process.ts';

/** How QEMU attaches a guest's image. */
export type QemuMedia = Pick<QemuSpawn, 'floppy' | 'disk' | 'kernel'>;

/**
 * The media of `qemu:<image>`: the built-in counter is written by the node itself; a registered
 * image is fetched (once per node and checksum) into `dir` from the image store.
 */
export async function guestMedia(
  blobs: BlobStore,
  dir: string,
  image: string,
  params: Record<string, number> = {},
): Promise<QemuMedia> {
  if ((BUILTIN_QEMU_IMAGES as readonly string[]).includes(image)) return materialiseImage(dir, image, params);
  if (Object.keys(params).length)
    throw new InvalidInput(`qemu image ${image} takes no params (got ${Object.keys(params).join(', ')})`);
  const manifest = await readImageManifest(blobs, image).catch((error: unknown) => {
    // the driver's contract: an image the node cannot boot is bad input, like any other guest
    if (error instanceof NotFound)
      throw new InvalidInput(`qemu image "${image}" is neither built in (counter) nor registered`);
    throw error;
  });
  const cache = join(dir, 'registered');
  const paths: Partial<Record<ImageFile['role'], string>> = {};
  for (const file of manifest.files) paths[file.role] = await cachedFile(blobs, cache, file);
  if (manifest.format === 'kernel')
    return {
      kernel: {
        path: paths.kernel!,
        ...(paths.initrd ? { initrd: paths.initrd } : {}),
        ...(manifest.cmdline !== undefined ? { append: manifest.cmdline } : {}),
      },
    };
  return { disk: { path: paths.disk!, format: manifest.format, readonly: true } };
}

/**
 * The local copy of one image file, fetched when missing or when the copy fails its sha256 (a disk
 * that went bad under it); written under a temporary name and renamed, so a reader never sees half.
 */
async function cachedFile(blobs: BlobStore, cache: string, file: ImageFile): Promise<string> {
  const path = join(cache, `${file.sha256}.${file.role}`);
  if (existsSync(path) && sha256(readFileSync(path)) === file.sha256) return path;
  const bytes = await readImageFile(blobs, file);
  mkdirSync(cache, { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, bytes, { mode: 0o444 });
    chmodSync(tmp, 0o444);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
  return path;
}
