// QEMU saved states in the image store. QEMU's migration stream is cut into parts as it arrives
// and each part is uploaded while QEMU goes on producing the next, so a save never lands on local
// disk. The parts and a manifest live under the same fence- and sequence-addressed prefix as wasm
// images (images/<vm>/<fence>/<seq>/), keys are written once, and every part carries a sha256 that
// is checked before its bytes reach the loading QEMU.
import type { ImageRef } from '../../../shared/domain/vm-state.ts';
import { Corrupt } from '../../../shared/storage/errors.ts';
import { type BlobStore, manifestKey, sha256 } from '../../../shared/storage/image-store.ts';
import type { MigrationStats } from './process.ts';
import type { SerialState } from './serial.ts';

export const QEMU_STATE_FORMAT = 'seesaw-qemu-state/1';
/** Stream bytes per part object; small enough that uploads overlap the migration. */
export const PART_BYTES = 4 * 1024 * 1024;
const UPLOADS_IN_FLIGHT = 4;

export interface StatePart {
  key: string;
  bytes: number;
  sha256: string;
}

/** A saved QEMU state: the migration stream's parts plus what the driver needs to run it again. */
export interface QemuStateManifest {
  format: typeof QEMU_STATE_FORMAT;
  vm: string;
  fence: number;
  seq: number;
  /** The guest image the state was saved from (`qemu:<image>`), needed again to load it. */
  guest: string;
  memMiB: number;
  parts: StatePart[];
  bytes: number;
  /** The guest's serial console at the save, so its digest chain continues on the next process. */
  serial: SerialState;
  digest: string;
  /** Node clock (epoch ms) when the guest stopped for the save. */
  vtod: number;
  /** QEMU's figures for the stream (pre-copy bytes and rounds, downtime). */
  migration: MigrationStats;
  createdAt: number;
  /** sha256 of the manifest without this field. */
  checksum: string;
}

export type StateMeta = Omit<
  QemuStateManifest,
  'format' | 'vm' | 'fence' | 'seq' | 'parts' | 'bytes' | 'checksum'
>;

const partKey = (vm: string, fence: number, seq: number, n: number) =>
  `images/${vm}/${fence}/${seq}/qemu-${n}.bin`;

/**
 * Starts an upload of one saved state. Feed the stream to `sink` (it waits while too many parts
 * are in flight, which holds back QEMU through the socket); `finish` writes the manifest once the
 * stream and the VM's serial state are complete, and only then is the state visible.
 */
export function startStateUpload(
  blobs: BlobStore,
  at: { vm: string; fence: number; seq: number },
  partBytes = PART_BYTES,
) {
  const parts: StatePart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let total = 0;

  const upload = (body: Buffer) => {
    const key = partKey(at.vm, at.fence, at.seq, parts.length);
    parts.push({ key, bytes: body.byteLength, sha256: sha256(body) });
    const p: Promise<void> = blobs
      .put(key, body)
      .catch((e) => {
        failure ??= e;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const cut = (all: boolean) => {
    while (pendingBytes >= partBytes || (all && pendingBytes > 0)) {
      const joined = Buffer.concat(pending);
      const size = Math.min(partBytes, joined.byteLength);
      upload(joined.subarray(0, size));
      pending = size < joined.byteLength ? [joined.subarray(size)] : [];
      pendingBytes = joined.byteLength - size;
    }
  };

  return {
    async sink(chunk: Uint8Array) {
      if (failure) throw failure;
      pending.push(Buffer.from(chunk));
      pendingBytes += chunk.byteLength;
      total += chunk.byteLength;
      cut(false);
      while (inFlight.size >= UPLOADS_IN_FLIGHT) await Promise.race(inFlight);
      if (failure) throw failure;
    },
    async finish(meta: StateMeta): Promise<{ ref: ImageRef; manifest: QemuStateManifest; bytes: number }> {
      cut(true);
      await Promise.all(inFlight);
      if (failure) throw failure;
      const body: Omit<QemuStateManifest, 'checksum'> = {
        format: QEMU_STATE_FORMAT,
        vm: at.vm,
        fence: at.fence,
        seq: at.seq,
        ...meta,
        parts,
        bytes: total,
      };
      const manifest: QemuStateManifest = { ...body, checksum: sha256(Buffer.from(JSON.stringify(body))) };
      const key = manifestKey(at.vm, at.fence, at.seq);
      const json = Buffer.from(JSON.stringify(manifest));
      await blobs.put(key, json);
      return {
        ref: { manifest: key, seq: at.seq, digest: meta.digest, vtod: meta.vtod },
        manifest,
        bytes: total + json.byteLength,
      };
    },
  };
}

/** Reads and verifies a saved state's manifest; Corrupt when it is missing, altered or not QEMU's. */
export async function readStateManifest(blobs: BlobStore, key: string): Promise<QemuStateManifest> {
  const object = await blobs.get(key);
  if (!object) throw new Corrupt(`qemu state manifest ${key} is missing`);
  let manifest: QemuStateManifest;
  try {
    manifest = JSON.parse(Buffer.from(object.body).toString('utf8'));
  } catch {
    throw new Corrupt(`qemu state manifest ${key} is not valid JSON`);
  }
  if (manifest?.format !== QEMU_STATE_FORMAT)
    throw new Corrupt(`${key} has format ${manifest?.format}, not ${QEMU_STATE_FORMAT}`);
  const { checksum, ...rest } = manifest;
  if (sha256(Buffer.from(JSON.stringify(rest))) !== checksum)
    throw new Corrupt(`qemu state manifest ${key} fails its sha256 check`);
  return manifest;
}

/**
 * The saved stream, part by part, each verified before it is yielded; the next part is fetched
 * while the current one is being loaded. Throws Corrupt on a missing or altered part, so the
 * loading QEMU never sees a byte that was not saved.
 */
export async function* stateStream(
  blobs: BlobStore,
  manifest: QemuStateManifest,
): AsyncGenerator<Uint8Array> {
  const fetch = async (part: StatePart) => {
    const object = await blobs.get(part.key);
    if (!object) throw new Corrupt(`qemu state part ${part.key} is missing`);
    if (object.body.byteLength !== part.bytes || sha256(object.body) !== part.sha256)
      throw new Corrupt(`qemu state part ${part.key} fails its sha256 check`);
    return object.body;
  };
  let next = manifest.parts[0] ? fetch(manifest.parts[0]) : undefined;
  next?.catch(() => {});
  for (let i = 0; i < manifest.parts.length; i++) {
    const current = await next!;
    const following = manifest.parts[i + 1];
    next = following ? fetch(following) : undefined;
    next?.catch(() => {});
    yield current;
  }
}
