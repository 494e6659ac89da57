// The sub-page delta codec and the block coding (shared/storage/page-delta.ts): pinned encodings
// beside the laws that a delta applied to its base gives the page back, that a coded block decodes
// to its bytes, and that a malformed delta or coded block is refused, never applied half-way.

import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyXorDelta,
  codeBlock,
  DeltaError,
  decodeBlock,
  encodeXorDelta,
  mostlyChanged,
  SAMPLE_WORDS,
} from '../../shared/storage/page-delta.ts';

const PAGE = 65536;

describe('the XOR delta codec', () => {
  it('codes one changed word as a skip, a length and its XOR (pinned)', () => {
    const base = new Uint8Array(16);
    const page = new Uint8Array(16);
    page.set([1, 2, 3, 4], 8);
    // skip 2 words, 1 literal word, XOR bytes 1 2 3 4; the trailing zero word is left out
    expect([...encodeXorDelta(base, page)!]).toEqual([2, 1, 1, 2, 3, 4]);
    expect([...encodeXorDelta(page, page)!]).toEqual([]);
  });

  it('codes a 64-byte line rewritten in a 64 KiB page in 68 bytes (pinned)', () => {
    const base = new Uint8Array(PAGE).fill(7);
    const page = new Uint8Array(base);
    for (let k = 0; k < 64; k++) page[4096 + k] = k + 100;
    const delta = encodeXorDelta(base, page)!;
    // skip 1024 words: varint 0x80 0x08; 16 literal words: 0x10; then 64 bytes
    expect(delta.byteLength).toBe(2 + 1 + 64);
    expect([...delta.subarray(0, 3)]).toEqual([0x80, 0x08, 0x10]);
    expect(applyXorDelta(base, delta)).toEqual(page);
  });

  it('gives up past the limit, so a page mostly rewritten goes whole', () => {
    const base = new Uint8Array(PAGE);
    const page = new Uint8Array(PAGE).fill(1);
    expect(encodeXorDelta(base, page, PAGE / 2)).toBeUndefined();
    expect(encodeXorDelta(base, page)).toBeUndefined(); // a whole-page literal plus its run header
  });

  it('gives up a page whose sampled words mostly changed without coding it (pinned)', () => {
    const words = (b: Uint8Array) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    const base = new Uint8Array(PAGE);
    const all = new Uint8Array(PAGE).fill(1);
    const oneLine = new Uint8Array(PAGE);
    oneLine.fill(1, 4096, 4096 + 64);
    // every sampled word differs: the code would be a whole page, past 7/8 of one
    expect(mostlyChanged(words(base), words(all), (PAGE * 7) / 8)).toBe(true);
    expect(mostlyChanged(words(base), words(oneLine), (PAGE * 7) / 8)).toBe(false);
    // half the words changed (every other 64-byte line): over a 1/4-page limit, under a 7/8 one
    const half = new Uint8Array(PAGE);
    for (let at = 0; at < PAGE; at += 128) half.fill(1, at, at + 64);
    expect(mostlyChanged(words(base), words(half), PAGE / 4)).toBe(true);
    expect(mostlyChanged(words(base), words(half), (PAGE * 7) / 8)).toBe(false);
    expect(encodeXorDelta(base, half, (PAGE * 7) / 8)!.byteLength).toBe(512 * (64 + 2)); // 512 runs: skip, 16 words, 64 bytes
    // a page of fewer than 4 samples' worth of words is never sampled, only coded
    const small = new Uint32Array(4 * SAMPLE_WORDS - 1);
    expect(
      mostlyChanged(
        small,
        small.map(() => 1),
        0,
      ),
    ).toBe(false);
  });

  it('refuses malformed deltas (pinned)', () => {
    const base = new Uint8Array(16);
    expect(() => applyXorDelta(base, Uint8Array.of(2))).toThrow(DeltaError); // ends in a run length
    expect(() => applyXorDelta(base, Uint8Array.of(0, 1, 9))).toThrow(DeltaError); // ends in literals
    expect(() => applyXorDelta(base, Uint8Array.of(3, 2, ...new Array(8).fill(1)))).toThrow(/reaches word 5/);
    expect(() => applyXorDelta(base, Uint8Array.of(0, 0))).toThrow(/no literal/);
    expect(() => applyXorDelta(base, Uint8Array.of(0xff, 0xff, 0xff, 0x01, 1))).toThrow(/longer than/);
    expect(() => encodeXorDelta(base, new Uint8Array(12))).toThrow(DeltaError);
  });

  const pages = fc
    .integer({ min: 1, max: 64 })
    .chain((words) =>
      fc.tuple(
        fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }),
        fc.array(fc.tuple(fc.nat(words * 4 - 1), fc.integer({ min: 1, max: 255 })), { maxLength: 40 }),
      ),
    )
    .map(([base, edits]) => {
      const page = new Uint8Array(base);
      for (const [at, x] of edits) page[at] = (page[at] as number) ^ x;
      return { base, page };
    });

  it('gives the page back when a delta is applied to its base', () => {
    fc.assert(
      fc.property(pages, ({ base, page }) => {
        const delta = encodeXorDelta(base, page, Number.POSITIVE_INFINITY)!;
        expect(applyXorDelta(base, delta)).toEqual(page);
        // the base is not changed, and the code is never longer than the changed words plus headers
        const changedWords = new Set<number>();
        for (let k = 0; k < page.length; k++) if (base[k] !== page[k]) changedWords.add(k >> 2);
        expect(delta.byteLength).toBeLessThanOrEqual(changedWords.size * 6 + 6);
        expect(delta.byteLength === 0).toBe(changedWords.size === 0);
      }),
    );
  });

  it('gives a delta up only past its limit or on a sample that says the page mostly changed', () => {
    const bigPages = fc
      .tuple(
        fc.nat(1023),
        fc.array(fc.tuple(fc.nat(PAGE / 64 - 1), fc.integer({ min: 1, max: 255 })), { maxLength: 1024 }),
        fc.nat(PAGE),
      )
      .map(([seed, lines, limit]) => {
        const base = new Uint8Array(PAGE).map((_, k) => (k * 31 + seed) & 0xff);
        const page = new Uint8Array(base);
        for (const [line, x] of lines)
          for (let k = 0; k < 64; k += 4) page[line * 64 + k] = (page[line * 64 + k] as number) ^ x;
        return { base, page, limit };
      });
    fc.assert(
      fc.property(bigPages, ({ base, page, limit }) => {
        const whole = encodeXorDelta(base, page, Number.POSITIVE_INFINITY)!;
        const coded = encodeXorDelta(base, page, limit);
        const words = (b: Uint8Array) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
        if (coded) expect(coded).toEqual(whole);
        else expect(whole.byteLength > limit || mostlyChanged(words(base), words(page), limit)).toBe(true);
        if (!coded && !mostlyChanged(words(base), words(page), limit))
          expect(whole.byteLength).toBeGreaterThan(limit);
      }),
      { numRuns: 60 },
    );
  });

  it('is exact on unaligned views too', () => {
    fc.assert(
      fc.property(pages, fc.integer({ min: 1, max: 3 }), ({ base, page }, shift) => {
        const at = (b: Uint8Array) => {
          const buf = new Uint8Array(b.byteLength + shift);
          buf.set(b, shift);
          return buf.subarray(shift);
        };
        const delta = encodeXorDelta(at(base), at(page), Number.POSITIVE_INFINITY)!;
        expect(applyXorDelta(at(base), delta)).toEqual(page);
      }),
    );
  });

  it('codes every maximal run of changed words, in order, as a word-by-word reference does', () => {
    // The encoder scans in tight loops (see encodeXorDelta); this reference walks word by word.
    const reference = (base: Uint8Array, page: Uint8Array) => {
      const a = new DataView(base.buffer, base.byteOffset);
      const b = new DataView(page.buffer, page.byteOffset);
      const out: number[] = [];
      const varint = (v: number) => {
        for (; v >= 0x80; v >>>= 7) out.push((v & 0x7f) | 0x80);
        out.push(v);
      };
      const words = base.byteLength / 4;
      let last = 0;
      for (let w = 0; w < words; ) {
        if (a.getUint32(w * 4) === b.getUint32(w * 4)) {
          w++;
          continue;
        }
        let end = w;
        while (end < words && a.getUint32(end * 4) !== b.getUint32(end * 4)) end++;
        varint(w - last);
        varint(end - w);
        for (let k = w * 4; k < end * 4; k++) out.push((base[k] as number) ^ (page[k] as number));
        last = w = end;
      }
      return out;
    };
    const lines = fc
      .tuple(
        fc.nat(255),
        fc.array(fc.tuple(fc.nat(PAGE / 64 - 1), fc.nat(15), fc.integer({ min: 1, max: 16 })), {
          maxLength: 300,
        }),
      )
      .map(([seed, edits]) => {
        const base = new Uint8Array(PAGE).map((_, k) => (k * 31 + seed) & 0xff);
        const page = new Uint8Array(base);
        // some words of a line rewritten: runs of any length, adjacent lines merging into longer ones
        for (const [line, from, n] of edits)
          for (let w = from; w < Math.min(16, from + n); w++) {
            const at = line * 64 + w * 4 + (w & 3);
            page[at] = (page[at] as number) ^ 0x5a;
          }
        return { base, page };
      });
    fc.assert(
      fc.property(lines, ({ base, page }) => {
        expect([...encodeXorDelta(base, page, Number.POSITIVE_INFINITY)!]).toEqual(reference(base, page));
      }),
      { numRuns: 40 },
    );
  });

  it('either refuses a corrupted delta or decodes it to some page of the same size, never beyond', () => {
    fc.assert(
      fc.property(pages, fc.nat(), fc.integer({ min: 1, max: 255 }), ({ base, page }, where, x) => {
        const delta = encodeXorDelta(base, page, Number.POSITIVE_INFINITY)!;
        if (delta.byteLength === 0) return;
        const bad = new Uint8Array(delta);
        bad[where % bad.length] = (bad[where % bad.length] as number) ^ x;
        try {
          expect(applyXorDelta(base, bad).byteLength).toBe(base.byteLength);
        } catch (error) {
          expect(error).toBeInstanceOf(DeltaError);
        }
      }),
    );
  });
});

/** A page as the hot guest leaves it: each 64-byte line one 8-byte value eight times. */
function linePage(seed: number): Uint8Array {
  const page = new Uint8Array(PAGE);
  const value = new Uint8Array(8);
  for (let line = 0; line < PAGE / 64; line++) {
    for (let k = 0; k < 8; k++) value[k] = ((line * 131 + k * 29 + seed * 7) * 2654435761) >>> 24;
    for (let k = 0; k < 64; k += 8) page.set(value, line * 64 + k);
  }
  return page;
}

describe('the block coding', () => {
  it('codes a page of repeated line values to under a quarter, and gives its bytes back (pinned)', () => {
    const page = linePage(1);
    const coded = codeBlock(page)!;
    expect(coded.coding).toBe('br');
    expect(coded.bytes.byteLength).toBeLessThan(PAGE / 4);
    expect(decodeBlock(coded.bytes, 'br', PAGE)).toEqual(page);
    expect(codeBlock(new Uint8Array(PAGE))!.bytes.byteLength).toBeLessThan(64);
  });

  it('leaves blocks raw that do not save an eighth (pinned)', () => {
    expect(codeBlock(new Uint8Array(randomBytes(PAGE)))).toBeUndefined();
    // a page whose first half is random saves about half: coded
    const half = new Uint8Array(PAGE);
    half.set(randomBytes(PAGE / 2));
    expect(codeBlock(half)!.bytes.byteLength).toBeLessThan((PAGE * 5) / 8);
    // one random eighth more than that: not worth it
    const most = new Uint8Array(PAGE);
    most.set(randomBytes((PAGE * 15) / 16));
    expect(codeBlock(most)).toBeUndefined();
  });

  it('refuses an unknown coding, a stream that does not decode, and one that decodes past its bound (pinned)', () => {
    const page = codeBlock(linePage(2))!.bytes;
    expect(() => decodeBlock(page, 'zstd', PAGE)).toThrow(/coded "zstd", which this node cannot read/);
    expect(() => decodeBlock(page, 'br', PAGE - 1)).toThrow(/decodes to more than 65535 bytes/);
    expect(() => decodeBlock(Uint8Array.of(0xff, 0xff, 0xff), 'br', PAGE)).toThrow(/does not decode/);
    expect(() => decodeBlock(page.subarray(0, page.byteLength >> 1), 'br', PAGE)).toThrow(DeltaError);
    // a bomb: 32 MiB of zeros in under a hundred bytes (256 times the bound) is stopped at the bound,
    // not inflated; quality 5 codes it as small as 11 does in a tenth of the time
    const quality = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } };
    const bomb = zlib.brotliCompressSync(new Uint8Array(32 * 1024 * 1024), quality);
    expect(bomb.byteLength).toBeLessThan(100);
    expect(() => decodeBlock(bomb, 'br', 2 * PAGE)).toThrow(/decodes to more than 131072 bytes/);
  });

  it('decodes every coded block to its bytes, coded only when that saves an eighth', () => {
    const blocks = fc.oneof(
      fc.uint8Array({ maxLength: 3 * 4096 }),
      fc.tuple(fc.nat(1000), fc.nat(PAGE)).map(([seed, cut]) => linePage(seed).subarray(0, cut)),
      fc
        .tuple(fc.nat(1000), fc.array(fc.tuple(fc.nat(PAGE - 1), fc.nat(255)), { maxLength: 200 }))
        .map(([seed, edits]) => {
          const page = linePage(seed);
          for (const [at, x] of edits) page[at] = x;
          return page;
        }),
    );
    fc.assert(
      fc.property(blocks, (bytes) => {
        const coded = codeBlock(bytes);
        if (!coded) return;
        expect(coded.bytes.byteLength).toBeLessThanOrEqual((bytes.byteLength * 7) / 8);
        expect(decodeBlock(coded.bytes, coded.coding, bytes.byteLength)).toEqual(new Uint8Array(bytes));
      }),
      { numRuns: 60 },
    );
  });
});
