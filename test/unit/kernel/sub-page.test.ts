// Sub-page deltas through the kernel and the image store (format seesaw-image/3, and /4 once they
// are stored coded): a guest that rewrites a few lines of its pages writes a final delta of those
// lines, a paused copy applies it in place reading only that object, a node without a copy
// restores the chain whole, the chains stay bounded, and a broken or unknown delta or coding is
// refused (Corrupt), never run.
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { VmLaunch } from '../../../node-agent/kernel/types.ts';
import { PAGE_BYTES } from '../../../shared/domain/guests.ts';
import { Corrupt } from '../../../shared/storage/errors.ts';
import {
  createImageStoreOn,
  deltaDepth,
  type ImageManifest,
  MAX_DELTA_DEPTH,
  memoryBlobs,
  type PageEntry,
  sha256,
} from '../../../shared/storage/image-store.ts';
import { aClock, aKernel, countedStore, runTicks } from './fixtures.ts';

// 8 pages of 1,024 lines; 2,000 lines a second is 200 a tick: a few lines of each page per tick.
const LAUNCH: Omit<VmLaunch, 'fence'> = {
  id: 'sp',
  guest: { kind: 'memory', params: { wsPages: 8, rate: 2_000, residentPages: 24 } },
  memPages: 24,
};

function rig() {
  const { blobs, store, reads } = countedStore();
  const clock = aClock();
  const source = aKernel(store, { clock, nodeId: 'a' });
  const reference = aKernel(createImageStoreOn(memoryBlobs()), { clock: aClock(), nodeId: 'r' });
  const both = (n: number) => {
    runTicks(source, n);
    runTicks(reference, n);
  };
  return { blobs, store, reads, clock, source, reference, both };
}

/** Brotli at quality 4: test bombs coded in a tenth of the default quality's time, as small. */
const QUICK = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };

/** A page entry that is a delta (plain, or coded with a base). */
const isDeltaEntry = (e: PageEntry) => e.length === 6 || (e.length === 7 && e[5] !== null);

/** The manifest object's JSON (an inline image carries its blocks after a newline). */
const manifestOf = (blobs: ReturnType<typeof memoryBlobs>, key: string): ImageManifest => {
  const body = Buffer.from(blobs.objects.get(key)!.body);
  const end = body.indexOf(0x0a);
  return JSON.parse(body.subarray(0, end < 0 ? body.length : end).toString('utf8'));
};

/** Pre-copy, target restored paused from it, a few more ticks, then the final delta. */
async function migrated() {
  const r = rig();
  await r.source.start({ ...LAUNCH, fence: 1 });
  await r.reference.start({ ...LAUNCH, fence: 1 });
  r.both(5);
  const precopy = await r.source.checkpoint(LAUNCH.id, 'delta');
  const target = aKernel(r.store, { clock: r.clock, nodeId: 'b' });
  await target.start({ ...LAUNCH, fence: 2, image: precopy.image, paused: true });
  r.both(3);
  r.source.pause(LAUNCH.id);
  const final = await r.source.checkpoint(LAUNCH.id, 'delta', { final: true });
  return { ...r, target, precopy, final };
}

describe('sub-page deltas', () => {
  it('writes the final delta of a guest that rewrote a few lines as those lines, coded (format 4)', async () => {
    const { blobs, final } = await migrated();
    const m = manifestOf(blobs, final.image.manifest);
    expect(m.format).toBe('seesaw-image/4');
    const deltas = m.pages.filter(isDeltaEntry);
    // the lines' XOR compresses (each line is one 8-byte value eight times), so each delta is coded
    expect(deltas.every((e) => e.length === 7 && e[6] === 'br')).toBe(true);
    // every working-set page (1..8) changed, and all go as deltas
    expect(deltas.map((e) => e[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(final.pages).toBe(8);
    // 600 lines of 64 bytes rewritten at most, plus run headers and the manifest: far below 8 pages
    expect(final.bytes).toBeLessThan(8 * PAGE_BYTES * 0.1);
  });

  it('applies the final delta in place on the paused copy, reading only that object, and runs on exactly', async () => {
    const { target, reference, final, reads } = await migrated();
    reads.length = 0;
    const applied = await target.applyImage!(LAUNCH.id, final.image);
    expect(reads).toEqual([final.image.manifest]);
    expect(applied.pages).toBe(8);
    expect(applied.bytes).toBeLessThan(8 * PAGE_BYTES * 0.1);
    expect(target.digest(LAUNCH.id)).toBe(final.image.digest);
    target.resume(LAUNCH.id);
    runTicks(target, 6);
    runTicks(reference, 6);
    expect(target.digest(LAUNCH.id)).toBe(reference.digest(LAUNCH.id));
  });

  it('applies a chain of deltas onto a copy held at an older image, reading only the images after it', async () => {
    const r = rig();
    await r.source.start({ ...LAUNCH, fence: 1 });
    await r.reference.start({ ...LAUNCH, fence: 1 });
    r.both(5);
    const first = await r.source.checkpoint(LAUNCH.id, 'delta');
    const target = aKernel(r.store, { clock: r.clock, nodeId: 'b' });
    await target.start({ ...LAUNCH, fence: 2, image: first.image, paused: true });
    r.both(2);
    const second = await r.source.checkpoint(LAUNCH.id, 'delta');
    r.both(2);
    r.source.pause(LAUNCH.id);
    const final = await r.source.checkpoint(LAUNCH.id, 'delta', { final: true });
    r.reads.length = 0;
    const applied = await target.applyImage!(LAUNCH.id, final.image);
    // the final object and the second image's (its deltas lie between the copy and the final ones)
    expect(r.reads.sort()).toEqual([final.image.manifest, second.image.manifest].sort());
    expect(applied.bytes).toBeLessThan(8 * PAGE_BYTES * 0.2);
    expect(target.digest(LAUNCH.id)).toBe(final.image.digest);
    target.resume(LAUNCH.id);
    runTicks(target, 3);
    runTicks(r.reference, 3);
    expect(target.digest(LAUNCH.id)).toBe(r.reference.digest(LAUNCH.id));
  });

  it('restores the final image whole on a node without a copy, resolving each delta onto its base', async () => {
    const { store, reference, final } = await migrated();
    const fresh = aKernel(store, { nodeId: 'c' });
    await fresh.start({ ...LAUNCH, fence: 2, image: final.image, paused: true });
    expect(fresh.digest(LAUNCH.id)).toBe(final.image.digest);
    fresh.resume(LAUNCH.id);
    runTicks(fresh, 4);
    runTicks(reference, 4);
    expect(fresh.digest(LAUNCH.id)).toBe(reference.digest(LAUNCH.id));
  });

  it('keeps every page within MAX_DELTA_DEPTH deltas of a whole page, and a final delta one deeper than the rest', async () => {
    const { blobs, source, reference, both } = rig();
    await source.start({ ...LAUNCH, fence: 1 });
    await reference.start({ ...LAUNCH, fence: 1 });
    let last = await source.checkpoint(LAUNCH.id, 'full');
    let deepest = 0;
    for (let i = 0; i < 12; i++) {
      both(2);
      last = await source.checkpoint(LAUNCH.id, 'delta');
      const m = manifestOf(blobs, last.image.manifest);
      deepest = Math.max(deepest, ...m.pages.map(deltaDepth));
    }
    expect(deepest).toBe(MAX_DELTA_DEPTH - 1);
    both(2);
    source.pause(LAUNCH.id);
    const final = await source.checkpoint(LAUNCH.id, 'delta', { final: true });
    expect(Math.max(...manifestOf(blobs, final.image.manifest).pages.map(deltaDepth))).toBeLessThanOrEqual(
      MAX_DELTA_DEPTH,
    );
    const fresh = aKernel(createImageStoreOn(blobs), { nodeId: 'c' });
    await fresh.start({ ...LAUNCH, fence: 2, image: final.image, paused: true });
    expect(fresh.digest(LAUNCH.id)).toBe(final.image.digest);
  });

  /** Rewrites a stored object in place (what a broken disk or a hostile writer would leave). */
  function tamper(
    blobs: ReturnType<typeof memoryBlobs>,
    key: string,
    change: (m: ImageManifest, blocks: Uint8Array) => void,
  ) {
    const body = Buffer.from(blobs.objects.get(key)!.body);
    const end = body.indexOf(0x0a);
    const m = JSON.parse(body.subarray(0, end).toString('utf8')) as ImageManifest;
    const blocks = new Uint8Array(body.subarray(end + 1));
    change(m, blocks);
    const { checksum: _, ...rest } = m;
    const json = Buffer.from(
      JSON.stringify({ ...rest, checksum: sha256(Buffer.from(JSON.stringify(rest))) }),
    );
    blobs.objects.set(key, { body: Buffer.concat([json, Buffer.from('\n'), blocks]), metadata: {} });
  }

  it('refuses a delta whose bytes were changed, on the copy and on a whole restore', async () => {
    const { blobs, store, target, final } = await migrated();
    tamper(blobs, final.image.manifest, (m, blocks) => {
      const first = m.pages.find(isDeltaEntry)!;
      blocks[first[2] + 3] = (blocks[first[2] + 3] ?? 0) ^ 0x40;
    });
    await expect(target.applyImage!(LAUNCH.id, final.image)).rejects.toThrow(
      /delta in .* (fails its sha256 check|does not decode)/,
    );
    // the whole restore refuses it too, and falls back to the pre-copy (recorded as a recovery)
    const fresh = aKernel(store, { nodeId: 'c' });
    const started = await fresh.start({ ...LAUNCH, fence: 2, image: final.image, paused: true });
    expect(started?.recovery?.why).toMatch(/delta in .* (fails its sha256 check|does not decode)/);
  });

  /** The index in `m.pages` of its first delta entry, and that entry. */
  const firstDelta = (m: ImageManifest) => {
    const at = m.pages.findIndex(isDeltaEntry);
    return { at, e: m.pages[at] as Extract<PageEntry, { length: 7 }> };
  };
  /** Puts `stored` in place of the first delta's block, as a block coded 'br' of that length. */
  const recode = (m: ImageManifest, blocks: Uint8Array, stored: Uint8Array, base: 'keep' | 'none') => {
    const { at, e } = firstDelta(m);
    expect(stored.byteLength).toBeLessThanOrEqual(e[4]);
    blocks.set(stored, e[2]);
    m.pages[at] = [e[0], e[1], e[2], e[3], stored.byteLength, base === 'keep' ? e[5] : null, 'br'];
  };

  it('refuses a delta or a coded block that does not decode, an entry of the wrong shape, and an unknown format or coding', async () => {
    const cases: [string, (m: ImageManifest, blocks: Uint8Array) => void, RegExp][] = [
      [
        'a run past the page',
        (m, blocks) => {
          const { at, e } = firstDelta(m);
          blocks.set([0xff, 0x7f, 2], e[2]); // skip 16,383 words, then 2 literal words: past the page
          m.pages[at] = [e[0], e[1], e[2], e[3], 3, e[5]!]; // as a plain (uncoded) delta
        },
        /does not decode: a delta run reaches word/,
      ],
      [
        'a coded delta of a run past the page',
        (m, blocks) =>
          recode(
            m,
            blocks,
            zlib.brotliCompressSync(Uint8Array.of(0xff, 0x7f, 2, ...new Array(8).fill(1))),
            'keep',
          ),
        /does not decode: a delta run reaches word/,
      ],
      [
        'a decompression bomb (a coded page that decodes past a page)',
        // quality 4 codes 64 MiB of zeros as small as the default 11 does, in a tenth of the time
        (m, blocks) =>
          recode(m, blocks, zlib.brotliCompressSync(new Uint8Array(64 * 1024 * 1024), QUICK), 'none'),
        /does not decode: a coded block decodes to more than 65536 bytes/,
      ],
      [
        'a coded delta that decodes past twice a page',
        (m, blocks) => recode(m, blocks, zlib.brotliCompressSync(new Uint8Array(4 * 65536)), 'keep'),
        /does not decode: a coded block decodes to more than 131072 bytes/,
      ],
      [
        'a coded page short of a page',
        (m, blocks) => recode(m, blocks, zlib.brotliCompressSync(new Uint8Array(100)), 'none'),
        /does not decode: a coded page decodes to 100 bytes, not 65536/,
      ],
      [
        'a coded block that is not brotli',
        (m, blocks) => recode(m, blocks, Uint8Array.of(0xff, 0xff, 0xff, 0xff), 'keep'),
        /does not decode: a coded block does not decode/,
      ],
      [
        'an unknown coding',
        (m) => {
          const { e } = firstDelta(m);
          e[6] = 'zstd' as never;
        },
        /coded "zstd", which this node cannot read/,
      ],
      [
        'a coded entry in an image of format 3',
        (m) => {
          m.format = 'seesaw-image/3';
        },
        /malformed page entry/,
      ],
      [
        'a malformed entry',
        (m) => {
          m.pages[0] = [0, 0, 0] as never;
        },
        /malformed page entry/,
      ],
      [
        'a delta deeper than allowed',
        (m) => {
          let e = m.pages.find(isDeltaEntry)!;
          for (let i = 0; i < MAX_DELTA_DEPTH + 1; i++) e = [e[0], e[1], e[2], e[3], 0, e];
          m.pages[m.pages.findIndex((x) => x[0] === e[0])] = e;
        },
        new RegExp(`more than ${MAX_DELTA_DEPTH} deltas from a whole page`),
      ],
      [
        'an unknown format',
        (m) => {
          m.format = 'seesaw-image/9' as never;
        },
        /format seesaw-image\/9, which this node cannot read/,
      ],
    ];
    for (const [what, change, reason] of cases) {
      const { blobs, target, final } = await migrated();
      tamper(blobs, final.image.manifest, change);
      await expect(target.applyImage!(LAUNCH.id, final.image), what).rejects.toThrow(reason);
      const store = createImageStoreOn(blobs);
      await expect(store.getImage(final.image.manifest), what).rejects.toBeInstanceOf(Corrupt);
    }
  });
});
