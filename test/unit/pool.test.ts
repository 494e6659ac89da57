import { describe, expect, it } from 'vitest';
import { eachLimited } from '../../shared/runtime/pool.ts';

describe('eachLimited', () => {
  it('runs every item once and never more than the limit at a time', async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    await eachLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 1 + (n % 3)));
      seen.push(n);
      inFlight--;
    });
    expect(seen.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(peak).toBe(3);
  });

  it('rejects with the failure of an item', async () => {
    await expect(
      eachLimited([1, 2], 2, async (n) => {
        if (n === 2) throw new Error('two failed');
      }),
    ).rejects.toThrow('two failed');
  });

  it('still works through the items when the limit is zero', async () => {
    const seen: number[] = [];
    await eachLimited([1, 2], 0, async (n) => {
      seen.push(n);
    });
    expect(seen).toEqual([1, 2]);
  });
});
