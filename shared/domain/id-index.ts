// Ids numbered 0, 1, 2, … in the order they were first added, looked up through one flat typed-array
// table (open addressing; each slot keeps the id's hash beside its number, in one cache line): indexing
// the 100,000 VM ids of a run costs a fraction of a Map's, which the balancer's input building pays
// every run. `IdIndex.of` builds the table for a whole column of ids at once, inserting them in the
// order of the table region they land in, so that the inserts stay in cache instead of missing it
// once per id.

/** FNV-1a over the UTF-16 code units, with a final mix so that the low bits (the slot) spread. */
function hashOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

/** Table regions `IdIndex.of` sorts the ids into before inserting them (a power of two). */
const REGIONS = 256;

export class IdIndex {
  /** Slot s is table[2s] (the id's number + 1, 0 when empty) and table[2s + 1] (the id's hash). */
  private table: Int32Array;
  private mask: number;
  /** The ids by number: `count` of them, in an array made `expected` long at once (no regrowth). */
  private readonly ids: string[];
  private count = 0;

  /** `expected`: about how many ids will be added (the table grows past it). */
  constructor(expected = 16, ids: string[] = new Array(expected > 0 ? Math.floor(expected) : 0)) {
    let slots = 16;
    while (slots < expected * 2) slots *= 2;
    this.table = new Int32Array(2 * slots);
    this.mask = slots - 1;
    this.ids = ids;
  }

  /**
   * The index of `ids[0 … count − 1]`, each numbered by its position, as adding them in order would
   * number them, except that an id met again keeps no number of its own: `twins` lists each such
   * later position with the first position of its id. The index reads its ids from `ids` (adding to
   * it writes there).
   */
  static of(ids: string[], count: number): { index: IdIndex; twins: { at: number; first: number }[] } {
    const index = new IdIndex(count, ids);
    const { table, mask } = index;
    const hashes = new Int32Array(count);
    for (let k = 0; k < count; k++) hashes[k] = hashOf(ids[k] as string);
    const twins: { at: number; first: number }[] = [];
    // Positions sorted by the region of the table their slot is in (stably, so that of two equal ids
    // the first is inserted first).
    const shift = Math.max(0, Math.log2(mask + 1) - Math.log2(REGIONS));
    const ends = new Int32Array(REGIONS + 1);
    const regionOf = (k: number) => ((hashes[k] as number) & mask) >>> shift;
    for (let k = 0; k < count; k++) {
      const r = regionOf(k) + 1;
      ends[r] = (ends[r] as number) + 1;
    }
    for (let r = 0; r < REGIONS; r++) ends[r + 1] = (ends[r + 1] as number) + (ends[r] as number);
    const order = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      const r = regionOf(k);
      order[ends[r] as number] = k;
      ends[r] = (ends[r] as number) + 1;
    }
    for (let j = 0; j < count; j++) {
      const k = order[j] as number;
      const h = hashes[k] as number;
      let slot = h & mask;
      let first = -1;
      for (; ; slot = (slot + 1) & mask) {
        const held = table[2 * slot] as number;
        if (held === 0) break;
        if (table[2 * slot + 1] === h && ids[held - 1] === ids[k]) {
          first = held - 1;
          break;
        }
      }
      if (first >= 0) {
        twins.push({ at: k, first });
        continue;
      }
      table[2 * slot] = k + 1;
      table[2 * slot + 1] = h;
    }
    index.count = count;
    // Listed by position, as adding the ids in order would have met them.
    twins.sort((a, b) => a.at - b.at);
    return { index, twins };
  }

  /** How many ids were added. */
  get size(): number {
    return this.count;
  }

  /** The number of `id`, or -1 when it was never added. */
  get(id: string): number {
    const h = hashOf(id);
    const { table, mask, ids } = this;
    for (let slot = h & mask; ; slot = (slot + 1) & mask) {
      const held = table[2 * slot] as number;
      if (held === 0) return -1;
      if (table[2 * slot + 1] === h && ids[held - 1] === id) return held - 1;
    }
  }

  /** Numbers `id` (the next number, `size` before the call) and returns -1; or its number if it has one. */
  add(id: string): number {
    if ((this.count + 1) * 2 > this.mask + 1) this.grow();
    const h = hashOf(id);
    const { table, mask, ids } = this;
    let slot = h & mask;
    for (; ; slot = (slot + 1) & mask) {
      const held = table[2 * slot] as number;
      if (held === 0) break;
      if (table[2 * slot + 1] === h && ids[held - 1] === id) return held - 1;
    }
    ids[this.count++] = id;
    table[2 * slot] = this.count;
    table[2 * slot + 1] = h;
    return -1;
  }

  private grow(): void {
    const old = this.table;
    const slots = old.length; // twice as many slots as before
    const table = new Int32Array(2 * slots);
    const mask = slots - 1;
    for (let k = 0; k < old.length; k += 2) {
      const held = old[k] as number;
      if (held === 0) continue;
      const h = old[k + 1] as number;
      let slot = h & mask;
      while ((table[2 * slot] as number) !== 0) slot = (slot + 1) & mask;
      table[2 * slot] = held;
      table[2 * slot + 1] = h;
    }
    this.table = table;
    this.mask = mask;
  }
}
