// Ids numbered 0, 1, 2, … in the order they were first added, looked up through one flat typed-array
// table (open addressing; each slot keeps the id's hash beside its number, in one cache line): indexing
// the 100,000 VM ids of a run costs a fraction of a Map's, which the balancer's input building pays
// every run.

/** FNV-1a over the UTF-16 code units, with a final mix so that the low bits (the slot) spread. */
function hashOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}

export class IdIndex {
  /** Slot s is table[2s] (the id's number + 1, 0 when empty) and table[2s + 1] (the id's hash). */
  private table: Int32Array;
  private mask: number;
  /** The ids by number: `count` of them, in an array made `expected` long at once (no regrowth). */
  private readonly ids: string[];
  private count = 0;

  /** `expected`: about how many ids will be added (the table grows past it). */
  constructor(expected = 16) {
    let slots = 16;
    while (slots < expected * 2) slots *= 2;
    this.table = new Int32Array(2 * slots);
    this.mask = slots - 1;
    this.ids = new Array(expected > 0 ? Math.floor(expected) : 0);
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
