import { describe, expect, it } from 'vitest';
import { PAGE, PageTracker } from '../../../node-agent/kernel/pages.ts';

describe('dirty-page tracking by shadow comparison', () => {
  it('finds exactly the pages written since the last scan and counts resident pages', () => {
    const memory = new WebAssembly.Memory({ initial: 40 });
    const bytes = new Uint8Array(memory.buffer);
    const tracker = new PageTracker(0);
    expect(tracker.scan(memory.buffer)).toBe(0);
    bytes[3 * PAGE + 17] = 1;
    bytes[33 * PAGE] = 2;
    expect(tracker.scan(memory.buffer)).toBe(2);
    expect(tracker.pagesFor('delta')).toEqual([3, 33]);
    expect(tracker.residentPages).toBe(2);
    expect(tracker.scan(memory.buffer)).toBe(0);
    bytes[3 * PAGE + 17] = 0;
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
    new Uint8Array(memory.buffer)[2 * PAGE + 5] = 9;
    tracker.scan(memory.buffer);
    expect(tracker.pages).toBe(3);
    const marks = tracker.markImaged();
    expect(tracker.pagesFor('delta')).toEqual([]);
    tracker.restoreMarks(marks);
    expect(tracker.pagesFor('delta')).toEqual([2]);
    expect(tracker.copyPage(2)[5]).toBe(9);
  });

  it('treats restored memory as clean', () => {
    const memory = new WebAssembly.Memory({ initial: 4 });
    new Uint8Array(memory.buffer)[PAGE] = 1;
    const tracker = new PageTracker(0);
    tracker.reset(memory.buffer);
    expect(tracker.residentPages).toBe(1);
    expect(tracker.scan(memory.buffer)).toBe(0);
    expect(tracker.pagesFor('delta')).toEqual([]);
  });
});
