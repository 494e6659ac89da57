// The S3 image store: VM images (a manifest plus packs of page and disk blocks) and registered
// guest modules. Keys are fence- and sequence-addressed (images/<vm>/<fence>/<seq>/...), so a
// write never overwrites another node's image; every block carries a sha256 that is checked on read.
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { PAGE_BYTES } from '../domain/guests.ts';
import type { ImageRef } from '../domain/vm-state.ts';
import { eachLimited } from '../runtime/pool.ts';
import type { Clients } from './clients.ts';
import { Conflict, Corrupt, InvalidInput, NotFound } from './errors.ts';
import { applyXorDelta, BLOCK_CODINGS, type BlockCoding, DeltaError, decodeBlock } from './page-delta.ts';
import type { GuestSpec } from './vms.ts';

/** Blocks are grouped into pack objects of at most this size, uploaded in parallel. */
const PACK_BYTES = 8 * 1024 * 1024;
const CONCURRENCY = 8;
const FORMAT = 'seesaw-image/1';
/**
 * A manifest object that carries its image's new blocks after its JSON and a newline (a delta that
 * fits one pack): the whole image is one PutObject, and `packs` names the manifest key itself.
 */
const FORMAT_INLINE = 'seesaw-image/2';
/**
 * An image (inline or not) with sub-page deltas among its page entries (see DeltaEntry); readers
 * of the older formats refuse it by its format, never misread it.
 */
const FORMAT_DELTA = 'seesaw-image/3';
/** An image with a coded (compressed) block among its page entries, at any depth (see CodedEntry). */
const FORMAT_CODED = 'seesaw-image/4';
const NEWLINE = Buffer.from('\n');
/** A delta entry applies to a page at most this many deltas away from a whole page, which bounds a restore's reads. */
export const MAX_DELTA_DEPTH = 8;

/** Where one block lives: [block index, pack index in `packs`, byte offset in the pack, sha256 hex]. */
export type BlockEntry = [index: number, pack: number, offset: number, sha256: string];
/**
 * A page sent as a sub-page delta (format 3): `length` bytes at the offset are the XOR against the
 * page that `base` describes (the previous image's entry for the page, its pack index remapped to
 * this manifest's `packs`), zero-run coded (page-delta.ts); `sha256` is that of the page it gives.
 */
export type DeltaEntry = [
  index: number,
  pack: number,
  offset: number,
  sha256: string,
  length: number,
  base: PageEntry,
];
/**
 * A block stored coded (format 4; page-delta.ts): the `length` bytes at the offset decode by
 * `coding` to the whole page (`base` null) or to the delta code against the page `base` describes.
 */
export type CodedEntry = [
  index: number,
  pack: number,
  offset: number,
  sha256: string,
  length: number,
  base: PageEntry | null,
  coding: BlockCoding,
];
export type PageEntry = BlockEntry | DeltaEntry | CodedEntry;

/** The entry a page entry's delta applies to; undefined for a whole page (plain or coded). */
const baseOf = (e: PageEntry): PageEntry | undefined => (e.length === 4 ? undefined : (e[5] ?? undefined));
const isDelta = (e: PageEntry) => baseOf(e) !== undefined;
const isCoded = (e: PageEntry): boolean => e.length === 7 || (baseOf(e) !== undefined && isCoded(baseOf(e)!));
/** Deltas between a page entry and the whole page it starts from (0 for a whole page). */
export const deltaDepth = (e: PageEntry): number => {
  const base = baseOf(e);
  return base ? 1 + deltaDepth(base) : 0;
};

/** A VM image: everything needed to rebuild the guest exactly, pointing at immutable packs. */
export interface ImageManifest {
  format: typeof FORMAT | typeof FORMAT_INLINE | typeof FORMAT_DELTA | typeof FORMAT_CODED;
  vm: string;
  fence: number;
  seq: number;
  kind: 'full' | 'delta';
  /** Manifest key of the full image this chain starts from (its own key for a full image). */
  base: string;
  /** Manifest key of the previous image in the chain. */
  parent?: string;
  guest: GuestSpec;
  /** Size of linear memory, in pages; pages not listed are zero. */
  memPages: number;
  /** Pack object keys (or manifest keys, for inline blocks); a delta lists the older packs it still points into. */
  packs: string[];
  pages: PageEntry[];
  disk: { bytes: number; blocks: BlockEntry[] };
  /** Exported mutable globals: i64 as decimal strings, numbers as f64 bits in hex (`f:<hex>`). */
  globals: Record<string, string>;
  vtod: number;
  vtodOffset: number;
  digest: string;
  createdAt: number;
  /** sha256 of the manifest without this field. */
  checksum: string;
}

export interface ImageWrite {
  vm: string;
  fence: number;
  seq: number;
  kind: 'full' | 'delta';
  /** The previous image of the chain; a delta keeps its entries for pages it does not rewrite. */
  previous?: ImageManifest;
  guest: GuestSpec;
  memPages: number;
  /** Page index → 64 KiB contents: all non-zero pages for a full image, dirty ones for a delta. */
  pages: Map<number, Uint8Array>;
  /**
   * Dirty pages a delta image sends as sub-page deltas instead: the XOR against the previous
   * image's page (page-delta.ts), and the sha256 of the page it gives. Not also in `pages`.
   */
  deltas?: Map<number, { delta: Uint8Array; sha256: string }>;
  /** Pages whose block (the whole page in `pages`, or its delta in `deltas`) is stored coded, as these bytes. */
  coded?: Map<number, { bytes: Uint8Array; coding: BlockCoding }>;
  disk: { bytes: number; blocks: Map<number, Uint8Array> };
  globals: Record<string, string>;
  vtod: number;
  vtodOffset: number;
  digest: string;
  createdAt: number;
}

export interface LoadedImage {
  manifest: ImageManifest;
  /** The blocks read (all of them, unless a pick chose some), each checksum-verified. */
  pages: Map<number, Uint8Array>;
  disk: Map<number, Uint8Array>;
  /** Bytes of blocks read: whole pages and disk blocks, and sub-page deltas (with any base read for them). */
  bytes: number;
}

/**
 * The block indexes to read of an image, chosen from its (verified) manifest; Corrupt/InvalidInput
 * to refuse it. `base` may hand over the contents of a delta entry's base page that the reader
 * already holds (a migration target's copy), at any step of the entry's chain, so that only the
 * deltas after it are read.
 */
export type BlockPick = (manifest: ImageManifest) => {
  pages: ReadonlySet<number>;
  disk: ReadonlySet<number>;
  base?: (index: number, base: PageEntry) => Uint8Array | undefined;
};

/**
 * An image object written to nobody yet: a migration's final delta that travels inside the
 * table's hand-over item instead of S3 (see docs/protocol.md). Whoever holds it must `publish` it
 * before anything else can need it from S3.
 */
export interface HeldObject {
  /** The manifest key it belongs at (an inline image: one object holds the manifest and its blocks). */
  key: string;
  body: Uint8Array;
}

/** What an image write cost: building the manifest and blocks, and the uploads (ms). */
export interface WriteTiming {
  encodeMs: number;
  uploadMs: number;
}

export interface ImageStore {
  /** Writes the packs of new blocks and the manifest; the returned ref is what makes the image visible. */
  putImage(
    image: ImageWrite,
    options?: { holdBackBytes?: number },
  ): Promise<{
    ref: ImageRef;
    manifest: ImageManifest;
    bytes: number;
    timing: WriteTiming;
    /** Set when `holdBackBytes` kept the image off the store: one object of at most that many bytes. */
    held?: HeldObject;
  }>;
  /**
   * Reads a manifest and every block it points to (or only those `pick` chooses), verifying each
   * checksum; Corrupt otherwise. `held` is the manifest's object when the caller has it (it is read
   * from there, and verified alike).
   */
  getImage(manifestKey: string, pick?: BlockPick, held?: HeldObject): Promise<LoadedImage>;
  /** Writes a held object at its key; one already there (the same image, written once) is kept. */
  publish(held: HeldObject): Promise<void>;
  /** Removes every object of a VM (all fences and sequences); returns how many. */
  deleteVmImages(vmId: string): Promise<number>;
  /** The manifests stored for a VM, newest first (by sequence, then fence); none are read. */
  listImages(vmId: string): Promise<{ manifest: string; fence: number; seq: number }[]>;
  putModule(name: string, bytes: Uint8Array): Promise<{ key: string; sha256: string; bytes: number }>;
  /** A registered module's binary, checksum-verified; NotFound if it was never stored. */
  getModule(name: string): Promise<Uint8Array>;
}

/** The object operations the image store needs; S3 in production, a Map in unit tests and benches. */
export interface BlobStore {
  put(key: string, body: Uint8Array, metadata?: Record<string, string>): Promise<void>;
  /** undefined when the key does not exist. */
  get(key: string): Promise<{ body: Uint8Array; metadata: Record<string, string> } | undefined>;
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function checkId(what: string, id: string) {
  if (!ID.test(id)) throw new InvalidInput(`${what} "${id}" must match ${ID}`);
}

export const imagePrefix = (vm: string) => `images/${vm}/`;
export const manifestKey = (vm: string, fence: number, seq: number) =>
  `images/${vm}/${fence}/${seq}/manifest.json`;
const MANIFEST_KEY = /^images\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/\d+\/\d+\/manifest\.json$/;
const packKey = (vm: string, fence: number, seq: number, n: number) =>
  `images/${vm}/${fence}/${seq}/pack-${n}.bin`;
export const moduleObjectKey = (name: string) => `modules/${name}.wasm`;

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The image store over S3, through the given clients' bucket. */
export function createImageStore(clients: Pick<Clients, 's3' | 'bucketName'>): ImageStore {
  return createImageStoreOn(s3Blobs(clients));
}

/** The image store over any BlobStore (see memoryBlobs for tests and benches). */
export function createImageStoreOn(blobs: BlobStore): ImageStore {
  return {
    putImage: (image, options) => putImage(blobs, image, options?.holdBackBytes),
    getImage: (key, pick, held) => getImage(blobs, key, pick, held),
    async publish(held) {
      if (!MANIFEST_KEY.test(held.key)) throw new InvalidInput(`"${held.key}" is not an image manifest key`);
      try {
        await blobs.put(held.key, held.body);
      } catch (error) {
        if (!(error instanceof Conflict)) throw error;
      }
    },
    async deleteVmImages(vmId) {
      checkId('vm id', vmId);
      const keys = await blobs.list(imagePrefix(vmId));
      await eachLimited(keys, CONCURRENCY, (k) => blobs.delete(k));
      return keys.length;
    },
    async listImages(vmId) {
      checkId('vm id', vmId);
      const out: { manifest: string; fence: number; seq: number }[] = [];
      for (const key of await blobs.list(imagePrefix(vmId))) {
        const m = /^images\/[^/]+\/(\d+)\/(\d+)\/manifest\.json$/.exec(key);
        if (m) out.push({ manifest: key, fence: Number(m[1]), seq: Number(m[2]) });
      }
      return out.sort((a, b) => b.seq - a.seq || b.fence - a.fence);
    },
    async putModule(name, bytes) {
      checkId('module name', name);
      const key = moduleObjectKey(name);
      const hash = sha256(bytes);
      await blobs.put(key, bytes, { sha256: hash });
      return { key, sha256: hash, bytes: bytes.byteLength };
    },
    async getModule(name) {
      checkId('module name', name);
      const key = moduleObjectKey(name);
      const object = await blobs.get(key);
      if (!object) throw new NotFound('module', name);
      if (object.metadata.sha256 !== sha256(object.body))
        throw new Corrupt(`module ${name} (${key}) fails its sha256 check`);
      return object.body;
    },
  };
}

/**
 * Writes an image: its new blocks in packs, then (with them) the manifest that makes it whole. A
 * delta whose new blocks fit one pack carries them in its manifest object: one PutObject in all.
 * Such a one-object image of at most `holdBackBytes` is not written but returned as `held`.
 */
async function putImage(blobs: BlobStore, image: ImageWrite, holdBackBytes = -1) {
  const t0 = performance.now();
  checkId('vm id', image.vm);
  if (image.kind === 'delta' && !image.previous)
    throw new InvalidInput('a delta image needs its previous image');
  const key = manifestKey(image.vm, image.fence, image.seq);
  let blockBytes = image.disk.blocks.size * PAGE_BYTES;
  for (const i of image.pages.keys()) blockBytes += image.coded?.get(i)?.bytes.byteLength ?? PAGE_BYTES;
  for (const [i, d] of image.deltas ?? [])
    blockBytes += image.coded?.get(i)?.bytes.byteLength ?? d.delta.byteLength;
  const inline = image.kind === 'delta' && blockBytes <= PACK_BYTES;
  const layout = layOutPacks(image, inline ? key : undefined);
  const manifest = manifestOf(image, key, layout);
  const json = Buffer.from(JSON.stringify(manifest));
  const blocks = layout.uploads.reduce((n, u) => n + u.parts.reduce((m, p) => m + p.byteLength, 0), 0);
  // Packs and manifest go up together: nobody reads a manifest before its ref is returned (and
  // recorded in the table), and a reader of an incomplete one gets Corrupt, never garbage.
  const uploads = inline
    ? [{ key, parts: [json, NEWLINE, ...(layout.uploads[0]?.parts ?? [])] }]
    : [...layout.uploads, { key, parts: [json] }];
  const bodies = uploads.map((u) => ({
    key: u.key,
    body: u.parts.length === 1 ? u.parts[0]! : Buffer.concat(u.parts),
  }));
  const t1 = performance.now();
  const only = bodies.length === 1 ? bodies[0] : undefined;
  const held = only && only.body.byteLength <= holdBackBytes ? only : undefined;
  if (!held) await eachLimited(bodies, CONCURRENCY, (u) => blobs.put(u.key, u.body));
  return {
    ref: { manifest: key, seq: image.seq, digest: image.digest, vtod: image.vtod },
    manifest,
    bytes: json.byteLength + blocks,
    timing: { encodeMs: t1 - t0, uploadMs: performance.now() - t1 },
    ...(held ? { held } : {}),
  };
}

interface PackLayout {
  packs: string[];
  pageEntries: Map<number, PageEntry>;
  diskEntries: Map<number, BlockEntry>;
  uploads: { key: string; parts: Uint8Array[] }[];
}

/**
 * Lays the new blocks out in packs (pages first, then disk blocks), keeping the previous image's
 * entries for the blocks a delta does not rewrite.
 */
function layOutPacks(image: ImageWrite, inlineKey?: string): PackLayout {
  const prev = image.kind === 'delta' ? image.previous : undefined;
  const packs: string[] = [];
  const packIndex = new Map<string, number>();
  const packOf = (k: string) => {
    let i = packIndex.get(k);
    if (i === undefined) {
      i = packs.length;
      packs.push(k);
      packIndex.set(k, i);
    }
    return i;
  };
  const pageEntries = new Map<number, PageEntry>();
  const diskEntries = new Map<number, BlockEntry>();
  if (prev) {
    const remap = (e: PageEntry): PageEntry => {
      const [i, p, o, h] = e;
      const at = packOf(prev.packs[p]!);
      if (e.length === 4) return [i, at, o, h];
      if (e.length === 6) return [i, at, o, h, e[4], remap(e[5])];
      return [i, at, o, h, e[4], e[5] && remap(e[5]), e[6]];
    };
    for (const e of prev.pages) pageEntries.set(e[0], remap(e));
    for (const [i, p, o, h] of prev.disk.blocks) diskEntries.set(i, [i, packOf(prev.packs[p]!), o, h]);
  }
  if (image.deltas?.size && !prev) throw new InvalidInput('sub-page deltas need a previous image');
  const uploads: PackLayout['uploads'] = [];
  let current: { key: string; parts: Uint8Array[]; size: number } | undefined;
  const place = (bytes: Uint8Array): [number, number] => {
    if (!current || current.size + bytes.byteLength > PACK_BYTES) {
      const key = inlineKey ?? packKey(image.vm, image.fence, image.seq, uploads.length);
      current = { key, parts: [], size: 0 };
      uploads.push(current);
    }
    const offset = current.size;
    const last = current.parts.at(-1);
    if (last && last.buffer === bytes.buffer && last.byteOffset + last.byteLength === bytes.byteOffset) {
      // blocks laid out back to back by the caller go up without another copy
      current.parts[current.parts.length - 1] = new Uint8Array(
        last.buffer,
        last.byteOffset,
        last.byteLength + bytes.byteLength,
      );
    } else current.parts.push(bytes);
    current.size += bytes.byteLength;
    return [packOf(current.key), offset];
  };
  for (const [i, bytes] of [...image.pages].sort((a, b) => a[0] - b[0])) {
    if (bytes.byteLength !== PAGE_BYTES) throw new InvalidInput(`page ${i} is ${bytes.byteLength} bytes`);
    const coded = image.coded?.get(i);
    const [p, o] = place(coded?.bytes ?? bytes);
    pageEntries.set(
      i,
      coded ? [i, p, o, sha256(bytes), coded.bytes.byteLength, null, coded.coding] : [i, p, o, sha256(bytes)],
    );
  }
  for (const [i, { delta, sha256: h }] of [...(image.deltas ?? [])].sort((a, b) => a[0] - b[0])) {
    const base = pageEntries.get(i);
    if (!base) throw new InvalidInput(`page ${i} is sent as a delta, but the previous image lacks it`);
    if (deltaDepth(base) >= MAX_DELTA_DEPTH)
      throw new InvalidInput(`page ${i}'s delta would lie ${MAX_DELTA_DEPTH + 1} deltas from a whole page`);
    const coded = image.coded?.get(i);
    const [p, o] = place(coded?.bytes ?? delta);
    pageEntries.set(
      i,
      coded ? [i, p, o, h, coded.bytes.byteLength, base, coded.coding] : [i, p, o, h, delta.byteLength, base],
    );
  }
  for (const [i, bytes] of [...image.disk.blocks].sort((a, b) => a[0] - b[0])) {
    if (bytes.byteLength !== PAGE_BYTES)
      throw new InvalidInput(`disk block ${i} is ${bytes.byteLength} bytes`);
    const [p, o] = place(bytes);
    diskEntries.set(i, [i, p, o, sha256(bytes)]);
  }
  return { packs, pageEntries, diskEntries, uploads };
}

/** The manifest of an image laid out in packs, with its checksum. */
function manifestOf(image: ImageWrite, key: string, layout: PackLayout): ImageManifest {
  const prev = image.kind === 'delta' ? image.previous : undefined;
  const entries = [...layout.pageEntries.values()];
  const anyDelta = entries.some(isDelta);
  const format = entries.some(isCoded)
    ? FORMAT_CODED
    : anyDelta
      ? FORMAT_DELTA
      : layout.packs.includes(key)
        ? FORMAT_INLINE
        : FORMAT;
  const body: Omit<ImageManifest, 'checksum'> = {
    format,
    vm: image.vm,
    fence: image.fence,
    seq: image.seq,
    kind: image.kind,
    base: prev ? prev.base : key,
    ...(image.previous ? { parent: manifestKey(image.vm, image.previous.fence, image.previous.seq) } : {}),
    guest: image.guest,
    memPages: image.memPages,
    packs: layout.packs,
    pages: [...layout.pageEntries.values()].sort((a, b) => a[0] - b[0]),
    disk: { bytes: image.disk.bytes, blocks: [...layout.diskEntries.values()].sort((a, b) => a[0] - b[0]) },
    globals: image.globals,
    vtod: image.vtod,
    vtodOffset: image.vtodOffset,
    digest: image.digest,
    createdAt: image.createdAt,
  };
  return { ...body, checksum: sha256(Buffer.from(JSON.stringify(body))) };
}

/** Reads a manifest and the packs its (picked) blocks lie in, then each block, verifying every checksum. */
async function getImage(
  blobs: BlobStore,
  key: string,
  pick?: BlockPick,
  heldObject?: HeldObject,
): Promise<LoadedImage> {
  const object = heldObject?.key === key ? heldObject : await blobs.get(key);
  if (!object) throw new Corrupt(`image manifest ${key} is missing`);
  const { json, inline } = splitManifestObject(object.body);
  const manifest = parseManifest(key, json);
  const wanted = pick?.(manifest);
  const pages = wanted ? manifest.pages.filter((e) => wanted.pages.has(e[0])) : manifest.pages;
  const disk = wanted ? manifest.disk.blocks.filter((e) => wanted.disk.has(e[0])) : manifest.disk.blocks;
  for (const e of pages) checkPageEntry(key, e, 0, manifest.format === FORMAT_CODED);
  // A delta entry's base (at any step of its chain) is read only when the caller does not hold it.
  const held = new Map<PageEntry, Uint8Array>();
  const toRead: BlockEntry[] = [...disk];
  const sizeOf = new Map<BlockEntry, number>();
  const plan = (e: PageEntry) => {
    const block: BlockEntry = [e[0], e[1], e[2], e[3]];
    toRead.push(block);
    if (e.length === 4) return;
    sizeOf.set(block, e[4]);
    const base = baseOf(e);
    if (!base) return;
    const have = wanted?.base?.(e[0], base);
    if (have) held.set(base, have);
    else plan(base);
  };
  for (const e of pages) plan(e);
  const packs = await readPacks(blobs, key, manifest, toRead, inline);
  const out = new Map<number, Uint8Array>();
  for (const e of pages) out.set(e[0], resolvePage(key, manifest, packs, e, held));
  const bytes = toRead.reduce((n, e) => n + (sizeOf.get(e) ?? PAGE_BYTES), 0);
  return {
    manifest,
    bytes,
    pages: out,
    disk: readBlocks(key, manifest, packs, { what: 'disk block', entries: disk, size: PAGE_BYTES }),
  };
}

/**
 * A page entry of the shape its format allows (coded entries in format 4 only), at most
 * MAX_DELTA_DEPTH deltas deep, naming a coding this node knows; Corrupt otherwise.
 */
function checkPageEntry(
  key: string,
  e: unknown,
  depth: number,
  codedFormat: boolean,
): asserts e is PageEntry {
  const base = Array.isArray(e) ? e[5] : undefined;
  const ok =
    Array.isArray(e) &&
    (e.length === 4 || e.length === 6 || (codedFormat && e.length === 7)) &&
    [e[0], e[1], e[2]].every((n) => Number.isInteger(n) && n >= 0) &&
    typeof e[3] === 'string' &&
    (e.length === 4 ||
      (Number.isInteger(e[4]) &&
        e[4] >= 0 &&
        e[4] <= 2 * PAGE_BYTES &&
        ((e.length === 7 && base === null) || base?.[0] === e[0])));
  if (!ok) throw new Corrupt(`image ${key} has a malformed page entry ${JSON.stringify(e)?.slice(0, 80)}`);
  if (e.length === 7 && !(BLOCK_CODINGS as readonly unknown[]).includes(e[6]))
    throw new Corrupt(
      `image ${key}: page ${e[0]} is coded ${JSON.stringify(e[6])?.slice(0, 40)}, which this node cannot read`,
    );
  if (base) {
    if (depth >= MAX_DELTA_DEPTH)
      throw new Corrupt(
        `image ${key}: page ${e[0]} lies more than ${MAX_DELTA_DEPTH} deltas from a whole page`,
      );
    checkPageEntry(key, base, depth + 1, codedFormat);
  }
}

/**
 * A page's contents: a whole page from its pack, or a delta applied to its base (the page the
 * caller holds, or resolved in turn); every step is checked against its sha256.
 */
function resolvePage(
  key: string,
  manifest: ImageManifest,
  packs: ReadonlyMap<number, Uint8Array>,
  e: PageEntry,
  held: ReadonlyMap<PageEntry, Uint8Array>,
): Uint8Array {
  if (e.length === 4)
    return readBlocks(key, manifest, packs, { what: 'page', entries: [e], size: PAGE_BYTES }).get(e[0])!;
  const [i, p, o, h, length, base] = e;
  const block = base ? `page ${i}'s delta` : `page ${i}`;
  const pack = packs.get(p)!;
  if (o + length > pack.byteLength)
    throw new Corrupt(`image ${key}: ${block} lies past the end of ${manifest.packs[p]}`);
  const under = base ? (held.get(base) ?? resolvePage(key, manifest, packs, base, held)) : undefined;
  let page: Uint8Array;
  try {
    const stored = pack.subarray(o, o + length);
    // a coded whole page decodes to at most a page, a coded delta to at most twice that
    const code = e.length === 7 ? decodeBlock(stored, e[6], under ? 2 * PAGE_BYTES : PAGE_BYTES) : stored;
    if (!under && code.byteLength !== PAGE_BYTES)
      throw new DeltaError(`a coded page decodes to ${code.byteLength} bytes, not ${PAGE_BYTES}`);
    page = under ? applyXorDelta(under, code) : code;
  } catch (error) {
    if (!(error instanceof DeltaError)) throw error;
    throw new Corrupt(`image ${key}: ${block} in ${manifest.packs[p]} does not decode: ${error.message}`);
  }
  if (sha256(page) !== h)
    throw new Corrupt(`image ${key}: ${block} in ${manifest.packs[p]} fails its sha256 check`);
  return page;
}

/** A manifest object's JSON, and the blocks an inline image carries after it (empty otherwise). */
function splitManifestObject(body: Uint8Array): { json: Uint8Array; inline: Uint8Array } {
  const end = body.indexOf(0x0a);
  if (end < 0) return { json: body, inline: body.subarray(body.byteLength) };
  return { json: body.subarray(0, end), inline: body.subarray(end + 1) };
}

async function readPacks(
  blobs: BlobStore,
  key: string,
  manifest: ImageManifest,
  entries: readonly BlockEntry[],
  inline: Uint8Array,
) {
  const packs = new Map<number, Uint8Array>();
  const needed = new Set<number>(entries.map((e) => e[1]));
  await eachLimited([...needed], CONCURRENCY, async (p) => {
    const packKey = manifest.packs[p];
    if (packKey === undefined) throw new Corrupt(`image ${key} points at pack #${p}, which it does not list`);
    if (packKey === key) return void packs.set(p, inline);
    const pack = await blobs.get(packKey);
    if (!pack) throw new Corrupt(`image ${key}: block pack ${packKey} is missing`);
    // An older inline image's blocks follow its manifest's JSON.
    packs.set(p, packKey.endsWith('/manifest.json') ? splitManifestObject(pack.body).inline : pack.body);
  });
  return packs;
}

function readBlocks(
  key: string,
  manifest: ImageManifest,
  packs: ReadonlyMap<number, Uint8Array>,
  { what, entries, size }: { what: string; entries: BlockEntry[]; size: number },
): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (const [i, p, o, h] of entries) {
    const pack = packs.get(p)!;
    if (o + size > pack.byteLength)
      throw new Corrupt(`image ${key}: ${what} ${i} lies past the end of ${manifest.packs[p]}`);
    const bytes = pack.subarray(o, o + size);
    if (sha256(bytes) !== h)
      throw new Corrupt(`image ${key}: ${what} ${i} in ${manifest.packs[p]} fails its sha256 check`);
    out.set(i, bytes);
  }
  return out;
}

function parseManifest(key: string, body: Uint8Array): ImageManifest {
  let manifest: ImageManifest;
  try {
    manifest = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new Corrupt(`image manifest ${key} is not valid JSON`);
  }
  if (![FORMAT, FORMAT_INLINE, FORMAT_DELTA, FORMAT_CODED].includes(manifest?.format))
    throw new Corrupt(`image manifest ${key} has format ${manifest?.format}, which this node cannot read`);
  const { checksum, ...rest } = manifest;
  if (sha256(Buffer.from(JSON.stringify(rest))) !== checksum)
    throw new Corrupt(`image manifest ${key} fails its sha256 check`);
  return manifest;
}

// ---- blob stores -------------------------------------------------------------------------------

/** A BlobStore over an S3 bucket. */
export function s3Blobs({ s3, bucketName }: Pick<Clients, 's3' | 'bucketName'>): BlobStore {
  return {
    async put(key, body, metadata) {
      try {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucketName,
            Key: key,
            Body: body,
            ContentLength: body.byteLength,
            // Every object here (image packs, manifests, modules) is written once: a second writer of
            // a key fails instead of replacing it, where the store honours the condition (S3 does;
            // s3rver ignores it on PUT, see test/integration/image-store.test.ts).
            IfNoneMatch: '*',
            ...(metadata ? { Metadata: metadata } : {}),
          }),
        );
      } catch (error) {
        const e = error as Error & { $metadata?: { httpStatusCode?: number } };
        if (e.name === 'PreconditionFailed' || e.$metadata?.httpStatusCode === 412)
          throw new Conflict(`object ${key} already exists; images and modules are never overwritten`);
        throw error;
      }
    },
    async get(key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucketName, Key: key }));
        const body = await out.Body!.transformToByteArray();
        return { body, metadata: out.Metadata ?? {} };
      } catch (error) {
        const name = (error as Error).name;
        if (name === 'NoSuchKey' || name === 'NotFound') return undefined;
        throw error;
      }
    },
    async list(prefix) {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const out = await s3.send(
          new ListObjectsV2Command({ Bucket: bucketName, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket: bucketName, Key: key }));
    },
  };
}

/** An in-memory BlobStore (unit tests, and the bench's serialisation figure). */
export function memoryBlobs(): BlobStore & {
  objects: Map<string, { body: Uint8Array; metadata: Record<string, string> }>;
} {
  const objects = new Map<string, { body: Uint8Array; metadata: Record<string, string> }>();
  return {
    objects,
    async put(key, body, metadata) {
      objects.set(key, { body: new Uint8Array(body), metadata: { ...metadata } });
    },
    async get(key) {
      const o = objects.get(key);
      return o && { body: new Uint8Array(o.body), metadata: { ...o.metadata } };
    },
    async list(prefix) {
      return [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    },
    async delete(key) {
      objects.delete(key);
    },
  };
}
