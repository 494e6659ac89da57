// Registered qemu images: one table item per image (its format, files and checksums), listed through
// the byKind index; the files live in the bucket under user-images/<name>/, each keyed by its
// sha256 and written once, beside an image.json that tells a node what to fetch. Nodes read only
// the bucket (the image.json and the files), never the table.
import { QEMU_GUEST_PREFIX } from '../domain/guests.ts';
import type { ImageFormat, ImageRole } from '../qemu-images.ts';
import type { Clients } from './clients.ts';
import { Corrupt, NotFound } from './errors.ts';
import { type BlobStore, sha256 } from './image-store.ts';
import { imageKey } from './keys.ts';
import { nameRegistry } from './registry.ts';
import { deleteItem } from './table.ts';
import { listAllVms } from './vms.ts';

/** One file of an image in the bucket. */
export interface ImageFile {
  role: ImageRole;
  key: string;
  sha256: string;
  bytes: number;
}

export interface ImageRecord {
  name: string;
  format: ImageFormat;
  files: ImageFile[];
  /** Kernel command line (kernel images only). */
  cmdline?: string;
  /** Bytes of all files. */
  bytes: number;
  /** What the guest sees: the disk's virtual size (qcow2), else the bytes. */
  virtualBytes: number;
  /** sha256 over format, command line and the files' checksums: same registration, same value. */
  sha256: string;
  createdAt: number;
}

const MANIFEST_FORMAT = 'seesaw-qemu-image/1';

/** What a node reads to boot a registered image (user-images/<name>/image.json). */
export interface ImageManifest {
  format: typeof MANIFEST_FORMAT;
  image: Pick<ImageRecord, 'name' | 'format' | 'files' | 'cmdline' | 'sha256'>;
}

export const imageFilesPrefix = (name: string) => `user-images/${name}/`;
export const imageManifestKey = (name: string) => `${imageFilesPrefix(name)}image.json`;
/** Content-addressed, so a name deleted and registered again with other bytes never meets stale files. */
export const imageFileKey = (name: string, role: ImageRole, hash: string) =>
  `${imageFilesPrefix(name)}${hash}.${role}`;

/** The one checksum of a registration: equal for the same format, command line and files. */
export function imageFingerprint(
  format: ImageFormat,
  files: Pick<ImageFile, 'role' | 'sha256'>[],
  cmdline: string | undefined,
): string {
  const parts = [...files].sort((a, b) => a.role.localeCompare(b.role)).map((f) => `${f.role}:${f.sha256}`);
  return sha256(Buffer.from(JSON.stringify([format, cmdline ?? null, parts])));
}

/** A registration's record: each file keyed by its own checksum, their bytes summed, and the fingerprint. */
export function imageRecordOf(r: {
  name: string;
  format: ImageFormat;
  contents: ReadonlyMap<ImageRole, Uint8Array>;
  cmdline?: string | undefined;
  virtualBytes: number;
  createdAt: number;
}): ImageRecord {
  const files = [...r.contents].map(([role, bytes]) => {
    const hash = sha256(bytes);
    return { role, key: imageFileKey(r.name, role, hash), sha256: hash, bytes: bytes.byteLength };
  });
  return {
    name: r.name,
    format: r.format,
    files,
    ...(r.cmdline !== undefined ? { cmdline: r.cmdline } : {}),
    bytes: files.reduce((sum, f) => sum + f.bytes, 0),
    virtualBytes: r.virtualBytes,
    sha256: imageFingerprint(r.format, files, r.cmdline),
    createdAt: r.createdAt,
  };
}

const strip = (r: ImageRecord): ImageRecord => ({
  name: r.name,
  format: r.format,
  files: r.files.map(({ role, key, sha256, bytes }) => ({ role, key, sha256, bytes })),
  ...(r.cmdline !== undefined ? { cmdline: r.cmdline } : {}),
  bytes: r.bytes,
  virtualBytes: r.virtualBytes,
  sha256: r.sha256,
  createdAt: r.createdAt,
});

/** Registered images as one registry (functions/api/register-once.ts); also as the functions below. */
export const imageRegistry = nameRegistry('IMAGE', { key: imageKey, strip, transition: 'registerImage' });

/** Registers an image once; ConditionFailed('registerImage') if the name is taken. */
export const registerImage = imageRegistry.register;
export const findImage = imageRegistry.find;
/** Every registered image, by name. */
export const listRegisteredImages = imageRegistry.list;

/**
 * Drops a registration, only while it is still the one with checksum `sha256` (a concurrent
 * delete and register of the same name cannot remove the newer one); ConditionFailed otherwise.
 */
export async function forgetImage(clients: Clients, name: string, hash: string): Promise<void> {
  await deleteItem(clients, 'forgetImage', imageKey(name), {
    ConditionExpression: 'sha256 = :h',
    ExpressionAttributeValues: { ':h': hash },
  });
}

/** The ids of the VMs whose guest is `qemu:<name>`, in any state. */
export async function vmsUsingImage(clients: Clients, name: string): Promise<string[]> {
  const kind = `${QEMU_GUEST_PREFIX}${name}`;
  return (await listAllVms(clients))
    .filter((vm) => vm.guest.kind === kind)
    .map((vm) => vm.id)
    .sort();
}

// ---- the bucket ---------------------------------------------------------------------------------

/** Writes the files (each with its sha256), then the image.json that makes the image bootable. */
export async function storeImageFiles(
  blobs: BlobStore,
  record: ImageRecord,
  contents: ReadonlyMap<ImageRole, Uint8Array>,
): Promise<void> {
  await Promise.all(record.files.map((f) => blobs.put(f.key, contents.get(f.role)!, { sha256: f.sha256 })));
  const { name, format, files, cmdline, sha256: hash } = record;
  const manifest: ImageManifest = {
    format: MANIFEST_FORMAT,
    image: { name, format, files, ...(cmdline !== undefined ? { cmdline } : {}), sha256: hash },
  };
  await blobs.put(imageManifestKey(name), Buffer.from(JSON.stringify(manifest)));
}

/** Removes every object of an image from the bucket; returns how many. */
export async function deleteImageFiles(blobs: BlobStore, name: string): Promise<number> {
  const keys = await blobs.list(imageFilesPrefix(name));
  await Promise.all(keys.map((k) => blobs.delete(k)));
  return keys.length;
}

/** A registered image's image.json; NotFound when the image is not (or no longer) registered. */
export async function readImageManifest(blobs: BlobStore, name: string): Promise<ImageManifest['image']> {
  const key = imageManifestKey(name);
  const object = await blobs.get(key);
  if (!object) throw new NotFound('qemu image', name);
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(Buffer.from(object.body).toString('utf8'));
  } catch {
    throw new Corrupt(`${key} is not valid JSON`);
  }
  if (manifest?.format !== MANIFEST_FORMAT) throw new Corrupt(`${key} has format ${manifest?.format}`);
  const { image } = manifest;
  if (imageFingerprint(image.format, image.files, image.cmdline) !== image.sha256)
    throw new Corrupt(`${key} does not match its own checksum`);
  return image;
}

/** One file of an image, checked against the sha256 its image.json records; Corrupt otherwise. */
export async function readImageFile(blobs: BlobStore, file: ImageFile): Promise<Uint8Array> {
  const object = await blobs.get(file.key);
  if (!object) throw new Corrupt(`image file ${file.key} is missing`);
  if (object.body.byteLength !== file.bytes || sha256(object.body) !== file.sha256)
    throw new Corrupt(`image file ${file.key} fails its sha256 check`);
  return object.body;
}
