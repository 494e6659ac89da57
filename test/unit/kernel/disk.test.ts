import { describe, expect, it } from 'vitest';
import { VirtualDisk } from '../../../node-agent/kernel/disk.ts';
import { DISK_BLOCK_BYTES } from '../../../shared/domain/guests.ts';

describe('the virtual disk cache', () => {
  it('reads back writes that cross block boundaries, and zeros where nothing was written', () => {
    const disk = new VirtualDisk(4 * DISK_BLOCK_BYTES);
    const data = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    expect(disk.write(DISK_BLOCK_BYTES - 50, data, 0, 100)).toBe(true);
    const out = new Uint8Array(120).fill(0xee);
    expect(disk.read(DISK_BLOCK_BYTES - 60, out, 10, 110)).toBe(true);
    expect([...out.subarray(10, 20)]).toEqual(new Array(10).fill(0));
    expect([...out.subarray(20, 120)]).toEqual([...data]);
    expect([...disk.blocks.keys()]).toEqual([0, 1]);
  });

  it('refuses ranges past the end of the disk', () => {
    const disk = new VirtualDisk(DISK_BLOCK_BYTES);
    expect(disk.write(DISK_BLOCK_BYTES - 1, new Uint8Array(2), 0, 2)).toBe(false);
    expect(disk.read(DISK_BLOCK_BYTES, new Uint8Array(1), 0, 1)).toBe(false);
  });

  it('hands out changed blocks for a delta, all blocks for a full image, and can take the marks back', () => {
    const disk = new VirtualDisk(8 * DISK_BLOCK_BYTES);
    disk.write(0, new Uint8Array([1]), 0, 1);
    disk.write(3 * DISK_BLOCK_BYTES, new Uint8Array([3]), 0, 1);
    const first = disk.takeBlocks('delta');
    expect([...first.blocks.keys()]).toEqual([0, 3]);
    disk.write(3 * DISK_BLOCK_BYTES + 1, new Uint8Array([4]), 0, 1);
    const failed = disk.takeBlocks('delta');
    expect([...failed.blocks.keys()]).toEqual([3]);
    disk.restoreMarks(failed.marks);
    expect([...disk.takeBlocks('delta').blocks.keys()]).toEqual([3]);
    expect([...disk.takeBlocks('full').blocks.keys()].sort()).toEqual([0, 3]);
    // the copies are snapshots, not views of the live cache
    const snap = disk.takeBlocks('full').blocks.get(0)!;
    disk.write(0, new Uint8Array([9]), 0, 1);
    expect(snap[0]).toBe(1);
  });
});

describe('the node disk budget', () => {
  const aBudget = (limit: number) => {
    const budget = { blocks: 0, admit: () => budget.blocks + 1 <= limit };
    return budget;
  };

  it('refuses a write that needs a block past the budget, writing nothing, and still takes writes to held blocks', () => {
    const budget = aBudget(2);
    const disk = new VirtualDisk(8 * DISK_BLOCK_BYTES, budget);
    expect(disk.write(0, new Uint8Array(2 * DISK_BLOCK_BYTES).fill(1), 0, 2 * DISK_BLOCK_BYTES)).toBe(true);
    expect(budget.blocks).toBe(2);
    expect(disk.write(DISK_BLOCK_BYTES + 10, new Uint8Array(DISK_BLOCK_BYTES), 0, DISK_BLOCK_BYTES)).toBe(
      false,
    );
    expect([...disk.blocks.keys()]).toEqual([0, 1]);
    expect(budget.blocks).toBe(2);
    expect(disk.write(10, new Uint8Array([7]), 0, 1)).toBe(true);
  });

  it('counts restored blocks against the budget and gives them all back on release', () => {
    const budget = aBudget(10);
    const disk = VirtualDisk.from(
      4 * DISK_BLOCK_BYTES,
      new Map([
        [0, new Uint8Array(DISK_BLOCK_BYTES)],
        [3, new Uint8Array(DISK_BLOCK_BYTES)],
      ]),
      budget,
    );
    expect(budget.blocks).toBe(2);
    disk.write(DISK_BLOCK_BYTES, new Uint8Array(1), 0, 1);
    expect(budget.blocks).toBe(3);
    disk.release();
    expect(budget.blocks).toBe(0);
  });
});
