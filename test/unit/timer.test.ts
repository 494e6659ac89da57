// The one interval runner (shared/runtime/timer.ts): never overlapping, stoppable mid-run.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { repeatEvery } from '../../shared/runtime/timer.ts';

describe('repeatEvery', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits one interval before the first run unless told otherwise', async () => {
    const late = vi.fn(async () => {});
    const early = vi.fn(async () => {});
    const a = repeatEvery(100, late);
    const b = repeatEvery(100, early, { firstDelayMs: 0 });
    await vi.advanceTimersByTimeAsync(1);
    expect(late).not.toHaveBeenCalled();
    expect(early).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(late).toHaveBeenCalledTimes(1);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('never overlaps itself: a slow run delays the next one', async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    const slow = async () => {
      running += 1;
      runs += 1;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 250));
      running -= 1;
    };
    const r = repeatEvery(100, slow);
    await vi.advanceTimersByTimeAsync(1000);
    // Each run takes 250 ms and the next starts 100 ms after it ends: 1000 ms hold 2 whole cycles.
    expect(most).toBe(1);
    expect(runs).toBeLessThanOrEqual(3);
    expect(runs).toBeGreaterThanOrEqual(2);
    const stopped = r.stop();
    await vi.advanceTimersByTimeAsync(300);
    await stopped;
  });

  it('reports a failed run and keeps going', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const r = repeatEvery(
      10,
      async () => {
        n += 1;
        if (n === 1) throw new Error('boom');
      },
      { onError: (e) => errors.push(e) },
    );
    await vi.advanceTimersByTimeAsync(35);
    expect(errors).toHaveLength(1);
    expect(n).toBeGreaterThanOrEqual(3);
    await r.stop();
  });

  it('stop waits for the run in progress and starts no other', async () => {
    let finished = false;
    let runs = 0;
    const r = repeatEvery(
      10,
      async () => {
        runs += 1;
        await new Promise((res) => setTimeout(res, 50));
        finished = true;
      },
      { firstDelayMs: 0 },
    );
    await vi.advanceTimersByTimeAsync(1);
    const stopped = r.stop();
    let done = false;
    void stopped.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(done).toBe(true);
    expect(finished).toBe(true);
    expect(runs).toBe(1);
  });
});
