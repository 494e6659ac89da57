// The sub-page delta codec (shared/storage/page-delta.ts): pinned encodings beside the laws that a
// delta applied to its base gives the page back, and that a malformed delta is refused, never
// applied half-way.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyXorDelta, DeltaError, encodeXorDelta } from '../../shared/storage/page-delta.ts';

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
