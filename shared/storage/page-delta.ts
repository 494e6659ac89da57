// Sub-page deltas (QEMU's XBZRLE, in the patent's terms: the memory pages modified since the image,
// sent as what changed within each page). A dirty page is XORed with the copy of it last sent; a
// guest that rewrote a few lines of the page leaves an XOR that is almost all zero, which is coded
// as runs of 32-bit words: pairs of (zero words to skip, literal words), each a LEB128 varint, the
// literal words' XOR bytes after the pair. A trailing zero run is left out. No I/O.

import zlib from 'node:zlib';

/** The word the runs count in (bytes). Pages are a whole number of words. */
export const DELTA_WORD = 4;
/** A run length needs at most this many varint bytes (2^21 words covers any page size we use). */
const MAX_VARINT_BYTES = 3;

/** A delta that does not decode onto a page of the given size: truncated, overlong, or malformed. */
export class DeltaError extends Error {}

/**
 * The XOR of `page` against `base`, zero-run coded; undefined when the code would be longer than
 * `limit` bytes (the page is cheaper sent whole). Both must be the same whole number of words. A
 * page that a sample shows mostly changed is given up at once, without coding it (see mostlyChanged).
 */
export function encodeXorDelta(
  base: Uint8Array,
  page: Uint8Array,
  limit = page.byteLength,
): Uint8Array | undefined {
  if (base.byteLength !== page.byteLength || page.byteLength % DELTA_WORD !== 0)
    throw new DeltaError(
      `cannot delta a ${page.byteLength}-byte page against a ${base.byteLength}-byte base`,
    );
  const a = wordsOf(base);
  const b = wordsOf(page);
  const words = a.length;
  if (mostlyChanged(a, b, limit)) return undefined;
  const xor = scratchWords(words);
  const xorBytes = new Uint8Array(xor.buffer, 0, words * DELTA_WORD);
  const out = new Uint8Array(Math.min(limit, page.byteLength + 2 * MAX_VARINT_BYTES * (words / 2 + 1)) + 16);
  let at = 0;
  let i = 0;
  while (i < words) {
    // Two tight word loops with nothing else in them. A loop that also tried a native compare of
    // 256 bytes at every block boundary was slower everywhere: 4.8 against 2.9 ms for the hot
    // guest's final delta (64 pages, 30 % of lines changed), 2.3-2.9 against 1.5-2.3 ms for 64
    // pages with 0.1-5 % of lines changed (best of 40, load average 13); same output.
    let z = i;
    while (z < words && a[z] === b[z]) z++;
    if (z === words) break;
    let l = z;
    for (; l < words; l++) {
      const x = (a[l] as number) ^ (b[l] as number);
      if (x === 0) break;
      xor[l] = x;
    }
    if (at + 2 * MAX_VARINT_BYTES + (l - z) * DELTA_WORD > limit) return undefined;
    at = putVarint(out, at, z - i);
    at = putVarint(out, at, l - z);
    out.set(xorBytes.subarray(z * DELTA_WORD, l * DELTA_WORD), at);
    at += (l - z) * DELTA_WORD;
    i = l;
  }
  return at > limit ? undefined : out.slice(0, at);
}

/** Words sampled, evenly spread, to tell a page that mostly changed before coding it. */
export const SAMPLE_WORDS = 256;

/**
 * Whether the sampled words say that the code would exceed `limit`: a page whose guest rewrote
 * most of its lines would otherwise be coded nearly to its end before the limit gives it up, at
 * the cost of a delta per page (the hot guest's final delta spent 20-40 ms so on pages that all
 * changed). A page near the limit may be misjudged either way; that costs bytes, never correctness.
 */
export function mostlyChanged(a: Uint32Array, b: Uint32Array, limit: number): boolean {
  const words = a.length;
  if (words < 4 * SAMPLE_WORDS) return false;
  // an odd stride, so that the samples do not keep landing on the same word of a line-periodic page
  const stride = Math.floor(words / SAMPLE_WORDS) | 1;
  let changed = 0;
  let sampled = 0;
  for (let w = stride >> 1; w < words; w += stride, sampled++) if (a[w] !== b[w]) changed++;
  return (changed / sampled) * words * DELTA_WORD > limit;
}

/**
 * The page `base` XOR the decoded `delta`, as a new array (the base is left alone); DeltaError when
 * the delta does not cover exactly a page of the base's size.
 */
export function applyXorDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  const out = new Uint8Array(base);
  const words = base.byteLength / DELTA_WORD;
  if (!Number.isInteger(words)) throw new DeltaError(`a ${base.byteLength}-byte base is not whole words`);
  const into = new Uint32Array(out.buffer, 0, words);
  // literal words are copied to an aligned scratch first, then XORed a word at a time
  const literal32 = scratchWords(words);
  const literal8 = new Uint8Array(literal32.buffer, 0, words * DELTA_WORD);
  let at = 0;
  let word = 0;
  while (at < delta.byteLength) {
    const zeros = readVarint(delta, at);
    const literal = readVarint(delta, zeros.next);
    at = literal.next;
    if (literal.value === 0) throw new DeltaError('a delta run with no literal words');
    word += zeros.value;
    if (word + literal.value > words)
      throw new DeltaError(`a delta run reaches word ${word + literal.value} of a ${words}-word page`);
    const bytes = literal.value * DELTA_WORD;
    if (at + bytes > delta.byteLength) throw new DeltaError('a delta ends inside its literal words');
    literal8.set(delta.subarray(at, at + bytes));
    for (let k = 0; k < literal.value; k++)
      into[word + k] = (into[word + k] as number) ^ (literal32[k] as number);
    at += bytes;
    word += literal.value;
  }
  return out;
}

let scratch = new Uint32Array(0);
/** A reused word buffer of at least `words` words (the codec is synchronous, so one is enough). */
function scratchWords(words: number): Uint32Array {
  if (scratch.length < words) scratch = new Uint32Array(words);
  return scratch;
}

/** 32-bit words over a byte array, copying only when it is not word-aligned. */
function wordsOf(bytes: Uint8Array): Uint32Array {
  const aligned = bytes.byteOffset % DELTA_WORD === 0 ? bytes : new Uint8Array(bytes);
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / DELTA_WORD);
}

function putVarint(out: Uint8Array, at: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    out[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  out[at++] = v;
  return at;
}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  for (let n = 0; n < MAX_VARINT_BYTES; n++) {
    const b = bytes[at + n];
    if (b === undefined) throw new DeltaError('a delta ends inside a run length');
    value |= (b & 0x7f) << (7 * n);
    if (b < 0x80) return { value, next: at + n + 1 };
  }
  throw new DeltaError(`a run length longer than ${MAX_VARINT_BYTES} bytes`);
}

// ---- block coding (format seesaw-image/4) ------------------------------------------------------
// A block (a whole page, or a page's XOR delta) may be stored compressed, as QEMU's multifd
// compression sends pages: brotli at quality 1 with a 64 KiB window, which on the hot guest's
// pages (each 64-byte line one 8-byte value eight times) takes about 4 MiB to 0.6 MiB at a few
// ms per MiB, and on random bytes gives up faster still (its own check: ~0.1 ms a page, where
// deflate at level 1 spent ~25 ms a MiB to save nothing, and a brotli pass over a 4 KiB sample
// cost more than the page). A block that does not shrink by an eighth is stored raw, so a reader
// pays nothing for memory that does not compress. The coding is named in the block's page entry, and
// a reader refuses a coding it does not know and any block that would decode past its bound.

/** The codings a page entry may name (format 4). */
export const BLOCK_CODINGS = ['br'] as const;
export type BlockCoding = (typeof BLOCK_CODINGS)[number];

const BROTLI_PARAMS = {
  [zlib.constants.BROTLI_PARAM_QUALITY]: 1,
  [zlib.constants.BROTLI_PARAM_LGWIN]: 16,
};

/** `bytes` coded ('br'), or undefined when that would not save an eighth of them. */
export function codeBlock(bytes: Uint8Array): { bytes: Uint8Array; coding: BlockCoding } | undefined {
  const coded = zlib.brotliCompressSync(bytes, {
    params: { ...BROTLI_PARAMS, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: bytes.byteLength },
  });
  return coded.byteLength <= (bytes.byteLength * 7) / 8 ? { bytes: coded, coding: 'br' } : undefined;
}

/**
 * The bytes a coded block stands for; DeltaError on a coding this node does not know, a stream
 * that does not decode, or one that would decode to more than `maxBytes` (a decompression bomb is
 * stopped there, not inflated).
 */
export function decodeBlock(stored: Uint8Array, coding: string, maxBytes: number): Uint8Array {
  if (!(BLOCK_CODINGS as readonly string[]).includes(coding))
    throw new DeltaError(`a block coded ${JSON.stringify(coding).slice(0, 40)}, which this node cannot read`);
  try {
    const out = zlib.brotliDecompressSync(stored, { maxOutputLength: maxBytes });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    const e = error as Error & { code?: string };
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError)
      throw new DeltaError(`a coded block decodes to more than ${maxBytes} bytes`);
    throw new DeltaError(`a coded block does not decode (${e.code ?? e.message})`);
  }
}
