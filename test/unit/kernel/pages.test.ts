import { describe, expect, it } from 'vitest';
import { PageTracker } from '../../../node-agent/kernel/pages.ts';
import { PAGE_BYTES } from '../../../shared/domain/guests.ts';

describe('dirty-page tracking by shadow comparison', () => {
  it('finds exactly the pages written since the last scan and counts resident pages', () => {
    const memory = new WebAssembly.Memory({ initial: 40 });
    const bytes = new Uint8Array(memory.buffer);
    const tracker = new PageTracker(0);
    expect(tracker.scan(memory.buffer)).toBe(0);
    bytes[3 * PAGE_BYTES + 17] = 1;
    bytes[33 * PAGE_BYTES] = 2;
    expect(tracker.scan(memory.buffer)).toBe(2);
    expect(tracker.pagesFor('delta')).toEqual([3, 33]);
    expect(tracker.residentPages).toBe(2);
    expect(tracker.scan(memory.buffer)).toBe(0);
    bytes[3 * PAGE_BYTES + 17] = 0;
    expect(tracker.scan(memory.buffer)).toBe(1);
    expect(tracker.residentPages).toBe(1);
    expect(tracker.pagesFor('full')).toEqual([33]);
    expect(tracker.takePeriodDirty()).toBe(2);
    expect(tracker.takePeriodDirty()).toBe(0);
  });

  it('follows memory growth and keeps image marks until an image is taken', () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const tracker = new PageTracker(0);
    tracker.scan(memory.buffer);
    memory.grow(2);
    new Uint8Array(memory.buffer)[2 * PAGE_BYTES + 5] = 9;
    tracker.scan(memory.buffer);
    expect(tracker.pages).toBe(3);
    const marks = tracker.markImaged();
    expect(tracker.pagesFor('delta')).toEqual([]);
    tracker.restoreMarks(marks);
    expect(tracker.pagesFor('delta')).toEqual([2]);
    expect(tracker.copyPages(memory.buffer, [2]).get(2)![5]).toBe(9);
  });

  it('treats restored memory as clean', () => {
    const memory = new WebAssembly.Memory({ initial: 4 });
    new Uint8Array(memory.buffer)[PAGE_BYTES] = 1;
    const tracker = new PageTracker(0);
    tracker.reset(memory.buffer);
    expect(tracker.residentPages).toBe(1);
    expect(tracker.scan(memory.buffer)).toBe(0);
    expect(tracker.pagesFor('delta')).toEqual([]);
  });

  it('with a dirty map, takes the pages the guest marked as dirty and clears the marks', () => {
    const memory = new WebAssembly.Memory({ initial: 8 });
    const bytes = new Uint8Array(memory.buffer);
    const tracker = new PageTracker(0);
    tracker.scan(memory.buffer);
    const map = 100; // one byte per page, inside page 0
    bytes[5 * PAGE_BYTES] = 1;
    bytes[map + 5] = 1;
    bytes[6 * PAGE_BYTES] = 1; // written but not marked: the guest broke its promise, so it is not seen
    bytes[map + 7] = 1; // marked but unchanged: taken as dirty all the same
    expect(tracker.scanMarked(memory.buffer, map)).toBe(2);
    expect(tracker.pagesFor('delta')).toEqual([5, 7]);
    expect(tracker.residentPages).toBe(2);
    expect(bytes.subarray(map, map + 8).every((b) => b === 0)).toBe(true);
    expect(tracker.copyPages(memory.buffer, [5]).get(5)![0]).toBe(1);
    // a full scan still finds everything the shadow has not seen
    tracker.markImaged();
    expect(tracker.scan(memory.buffer)).toBe(2);
    expect(tracker.pagesFor('delta')).toEqual([5, 6]);
  });

  it('falls back to comparing everything when the map does not fit in memory', () => {
    const memory = new WebAssembly.Memory({ initial: 2 });
    const tracker = new PageTracker(0);
    tracker.scan(memory.buffer);
    new Uint8Array(memory.buffer)[PAGE_BYTES + 3] = 4;
    expect(tracker.scanMarked(memory.buffer, 2 * PAGE_BYTES - 1)).toBe(1);
  });
});
