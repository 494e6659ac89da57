// A VM's virtual disk, cached on the node in blocks of one page (PAGE_BYTES, 64 KiB; absent
// blocks read as zeros). A block is a page on purpose: the node counts each block it holds as one
// page of its memory. The guest's disk_write is the only write path, so dirty blocks are marked
// there at no extra cost.
import { PAGE_BYTES } from '../../shared/domain/guests.ts';

/** The node's account of disk blocks held in memory; a write needing a block it refuses fails. */
export interface DiskBudget {
  /** May one more block be held? */
  admit(): boolean;
  /** Blocks now held, across the node's disks. */
  blocks: number;
}

export class VirtualDisk {
  readonly blocks = new Map<number, Uint8Array>();
  private dirty = new Set<number>();

  constructor(
    readonly bytes: number,
    private readonly budget?: DiskBudget,
  ) {}

  static from(bytes: number, blocks: Map<number, Uint8Array>, budget?: DiskBudget): VirtualDisk {
    const disk = new VirtualDisk(bytes, budget);
    for (const [i, b] of blocks) disk.blocks.set(i, new Uint8Array(b));
    if (budget) budget.blocks += blocks.size;
    return disk;
  }

  /** Gives the disk's blocks back to the node's budget (the VM left the node). */
  release() {
    if (this.budget) this.budget.blocks -= this.blocks.size;
    this.blocks.clear();
  }

  /** Copies disk[offset, offset+len) into `into` at `at`; false if out of range. */
  read(offset: number, into: Uint8Array, at: number, len: number): boolean {
    if (offset + len > this.bytes) return false;
    let done = 0;
    while (done < len) {
      const pos = offset + done;
      const index = Math.floor(pos / PAGE_BYTES);
      const within = pos - index * PAGE_BYTES;
      const n = Math.min(len - done, PAGE_BYTES - within);
      const block = this.blocks.get(index);
      if (block) into.set(block.subarray(within, within + n), at + done);
      else into.fill(0, at + done, at + done + n);
      done += n;
    }
    return true;
  }

  /** False, writing nothing, when out of range or when the node's budget refuses a block it needs. */
  write(offset: number, from: Uint8Array, at: number, len: number): boolean {
    if (offset + len > this.bytes) return false;
    if (this.budget) {
      let needed = 0;
      const last = Math.floor((offset + len - 1) / PAGE_BYTES);
      for (let i = Math.floor(offset / PAGE_BYTES); len > 0 && i <= last; i++)
        if (!this.blocks.has(i)) needed++;
      for (let n = 0; n < needed; n++) {
        if (!this.budget.admit()) {
          this.budget.blocks -= n;
          return false;
        }
        this.budget.blocks += 1;
      }
    }
    let done = 0;
    while (done < len) {
      const pos = offset + done;
      const index = Math.floor(pos / PAGE_BYTES);
      const within = pos - index * PAGE_BYTES;
      const n = Math.min(len - done, PAGE_BYTES - within);
      let block = this.blocks.get(index);
      if (!block) {
        block = new Uint8Array(PAGE_BYTES);
        this.blocks.set(index, block);
      }
      block.set(from.subarray(at + done, at + done + n), within);
      this.dirty.add(index);
      done += n;
    }
    return true;
  }

  /** Copies of the blocks to write: all for a full image, changed ones for a delta; clears the marks. */
  takeBlocks(kind: 'full' | 'delta'): { blocks: Map<number, Uint8Array>; marks: Set<number> } {
    const marks = this.dirty;
    this.dirty = new Set();
    const indexes = kind === 'full' ? [...this.blocks.keys()] : [...marks];
    return { blocks: new Map(indexes.map((i) => [i, new Uint8Array(this.blocks.get(i)!)])), marks };
  }

  /** Blocks written since the last image was taken. */
  changedBlocks(): ReadonlySet<number> {
    return this.dirty;
  }

  /** Puts a block as an image has it (all zeros: absent), clean; false when the node's budget refuses it. */
  setImaged(index: number, contents: Uint8Array | undefined): boolean {
    const had = this.blocks.has(index);
    if (contents && !had) {
      if (this.budget && !this.budget.admit()) return false;
      if (this.budget) this.budget.blocks += 1;
    }
    if (!contents && had && this.budget) this.budget.blocks -= 1;
    if (contents) this.blocks.set(index, new Uint8Array(contents));
    else this.blocks.delete(index);
    this.dirty.delete(index);
    return true;
  }

  restoreMarks(marks: Set<number>) {
    for (const i of marks) this.dirty.add(i);
  }
}
