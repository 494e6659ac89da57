// A VM's virtual disk, cached on the node as 64 KiB blocks (absent blocks read as zeros). The
// guest's disk_write is the only write path, so dirty blocks are marked there at no extra cost.

export const DISK_BLOCK = 65536;

export class VirtualDisk {
  readonly blocks = new Map<number, Uint8Array>();
  private dirty = new Set<number>();

  constructor(readonly bytes: number) {}

  static from(bytes: number, blocks: Map<number, Uint8Array>): VirtualDisk {
    const disk = new VirtualDisk(bytes);
    for (const [i, b] of blocks) disk.blocks.set(i, new Uint8Array(b));
    return disk;
  }

  /** Copies disk[offset, offset+len) into `into` at `at`; false if out of range. */
  read(offset: number, into: Uint8Array, at: number, len: number): boolean {
    if (offset + len > this.bytes) return false;
    let done = 0;
    while (done < len) {
      const pos = offset + done;
      const index = Math.floor(pos / DISK_BLOCK);
      const within = pos - index * DISK_BLOCK;
      const n = Math.min(len - done, DISK_BLOCK - within);
      const block = this.blocks.get(index);
      if (block) into.set(block.subarray(within, within + n), at + done);
      else into.fill(0, at + done, at + done + n);
      done += n;
    }
    return true;
  }

  write(offset: number, from: Uint8Array, at: number, len: number): boolean {
    if (offset + len > this.bytes) return false;
    let done = 0;
    while (done < len) {
      const pos = offset + done;
      const index = Math.floor(pos / DISK_BLOCK);
      const within = pos - index * DISK_BLOCK;
      const n = Math.min(len - done, DISK_BLOCK - within);
      let block = this.blocks.get(index);
      if (!block) {
        block = new Uint8Array(DISK_BLOCK);
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

  restoreMarks(marks: Set<number>) {
    for (const i of marks) this.dirty.add(i);
  }
}
