// Dirty-page tracking for guest memory. Wasm memory cannot be write-protected, so the tracker
// keeps a shadow copy and compares it with memory at each scan (measure and checkpoint), a
// native memcmp per 1 MiB chunk and then per page where a chunk differs; a guest that keeps a
// dirty map (see DIRTY_MAP_EXPORT) is compared only where it says it wrote. See "Dirty pages" in
// docs/kernel.md for the measured costs.
import { PAGE_BYTES } from '../../shared/domain/guests.ts';

const CHUNK_PAGES = 16;

export class PageTracker {
  private shadow: Buffer;
  /** Pages changed since the last image was taken. */
  private sinceImage: Uint8Array;
  /** Pages changed since the last measurement period began. */
  private sincePeriod: Uint8Array;
  /** Pages whose contents are not all zero (as of the last scan). */
  private resident: Uint8Array;
  private residentCount = 0;
  private static zero = Buffer.alloc(PAGE_BYTES);

  constructor(pages: number) {
    this.shadow = Buffer.alloc(pages * PAGE_BYTES);
    this.sinceImage = new Uint8Array(pages);
    this.sincePeriod = new Uint8Array(pages);
    this.resident = new Uint8Array(pages);
  }

  get pages(): number {
    return this.sinceImage.length;
  }

  /** Compares memory with the shadow, records changed pages and refreshes the shadow; returns how many changed. */
  scan(memory: ArrayBuffer): number {
    const mem = Buffer.from(memory);
    const pages = mem.byteLength / PAGE_BYTES;
    if (pages > this.pages) this.grow(pages);
    let changed = 0;
    for (let chunk = 0; chunk < pages; chunk += CHUNK_PAGES) {
      const start = chunk * PAGE_BYTES;
      const end = Math.min(pages, chunk + CHUNK_PAGES) * PAGE_BYTES;
      if (mem.compare(this.shadow, start, end, start, end) === 0) continue;
      for (let p = chunk; p < Math.min(pages, chunk + CHUNK_PAGES); p++) changed += this.refresh(mem, p);
    }
    return changed;
  }

  /** Compares one page with the shadow; if it changed, copies it and marks it. Returns 1 if changed. */
  private refresh(mem: Buffer, p: number): number {
    const s = p * PAGE_BYTES;
    if (mem.compare(this.shadow, s, s + PAGE_BYTES, s, s + PAGE_BYTES) === 0) return 0;
    this.take(mem, p, 1);
    return 1;
  }

  /** Copies page `p` into the shadow, marks it dirty (1) or clean (0), and counts it resident unless all zero. */
  private take(mem: Buffer, p: number, dirty: 0 | 1) {
    const s = p * PAGE_BYTES;
    mem.copy(this.shadow, s, s, s + PAGE_BYTES);
    this.sinceImage[p] = dirty;
    this.sincePeriod[p] = dirty;
    const nonZero = PageTracker.zero.compare(mem, s, s + PAGE_BYTES) !== 0 ? 1 : 0;
    this.residentCount += nonZero - (this.resident[p] ?? 0);
    this.resident[p] = nonZero;
  }

  /**
   * Instead of scan, trusts the guest's dirty map (one byte per page at `map`): the pages marked
   * there are dirty (and resident), the map is cleared, and nothing is compared or copied, so the
   * shadow goes stale for them until the next full scan (which then re-marks them: a superset,
   * never a loss). Falls back to a full scan if the map does not fit in memory.
   */
  scanMarked(memory: ArrayBuffer, map: number): number {
    const mem = new Uint8Array(memory);
    const pages = mem.byteLength / PAGE_BYTES;
    if (!Number.isInteger(map) || map < 0 || map + pages > mem.byteLength) return this.scan(memory);
    if (pages > this.pages) this.grow(pages);
    let changed = 0;
    for (let p = 0; p < pages; p++) {
      if (mem[map + p] === 0) continue;
      mem[map + p] = 0;
      this.sinceImage[p] = 1;
      this.sincePeriod[p] = 1;
      if (!this.resident[p]) {
        this.resident[p] = 1;
        this.residentCount++;
      }
      changed++;
    }
    return changed;
  }

  /** Accepts memory as it is now as clean and imaged (after a restore). */
  reset(memory: ArrayBuffer) {
    const pages = memory.byteLength / PAGE_BYTES;
    this.shadow = Buffer.from(Buffer.from(memory));
    this.sinceImage = new Uint8Array(pages);
    this.sincePeriod = new Uint8Array(pages);
    this.resident = new Uint8Array(pages);
    this.residentCount = 0;
    for (let p = 0; p < pages; p++) {
      const s = p * PAGE_BYTES;
      if (PageTracker.zero.compare(this.shadow, s, s + PAGE_BYTES) !== 0) {
        this.resident[p] = 1;
        this.residentCount++;
      }
    }
  }

  /**
   * Accepts these pages of memory as they are now as clean and imaged (after an image was applied
   * to them); other pages keep their marks.
   */
  acceptPages(memory: ArrayBuffer, pages: Iterable<number>) {
    const mem = Buffer.from(memory);
    const count = mem.byteLength / PAGE_BYTES;
    if (count > this.pages) this.grow(count);
    for (const p of pages) this.take(mem, p, 0);
  }

  get residentPages(): number {
    return this.residentCount;
  }

  /** Distinct pages dirtied since the previous call (one measurement period). */
  takePeriodDirty(): number {
    let n = 0;
    for (let p = 0; p < this.sincePeriod.length; p++) n += this.sincePeriod[p]!;
    this.sincePeriod.fill(0);
    return n;
  }

  /** Pages to write for a full image (every non-zero page) or a delta (pages changed since the last image). */
  pagesFor(kind: 'full' | 'delta'): number[] {
    const set = kind === 'full' ? this.resident : this.sinceImage;
    const out: number[] = [];
    for (let p = 0; p < set.length; p++) if (set[p]) out.push(p);
    return out;
  }

  /** Copies of pages of memory, laid out back to back in one buffer (call right after a scan). */
  copyPages(memory: ArrayBuffer, pages: number[]): Map<number, Uint8Array> {
    const mem = Buffer.from(memory);
    const out = Buffer.allocUnsafe(pages.length * PAGE_BYTES);
    return new Map(
      pages.map((p, i) => {
        mem.copy(out, i * PAGE_BYTES, p * PAGE_BYTES, (p + 1) * PAGE_BYTES);
        return [p, out.subarray(i * PAGE_BYTES, (i + 1) * PAGE_BYTES)];
      }),
    );
  }

  /** Marks the current state imaged; returns the old marks so a failed write can put them back. */
  markImaged(): Uint8Array {
    const old = this.sinceImage;
    this.sinceImage = new Uint8Array(old.length);
    return old;
  }

  restoreMarks(old: Uint8Array) {
    for (let p = 0; p < old.length; p++) if (old[p]) this.sinceImage[p] = 1;
  }

  private grow(pages: number) {
    const shadow = Buffer.alloc(pages * PAGE_BYTES);
    this.shadow.copy(shadow);
    this.shadow = shadow;
    const extend = (a: Uint8Array) => {
      const b = new Uint8Array(pages);
      b.set(a);
      return b;
    };
    this.sinceImage = extend(this.sinceImage);
    this.sincePeriod = extend(this.sincePeriod);
    this.resident = extend(this.resident);
  }
}
