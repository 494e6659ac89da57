// Digests in the tick before a foreseen measure, and measures that need no watchdog batch.
import { describe, expect, it } from 'vitest';
import { dirtyRateOf } from '../../../shared/domain/precopy.ts';
import { createImageStoreOn, memoryBlobs } from '../../../shared/storage/image-store.ts';
import { wasmOf } from '../../support/hostile.ts';
import { aKernel, runTicks } from './fixtures.ts';

/** A guest whose digest spins forever once it has run `after` times. */
const SPIN_DIGEST_LATER = (after: number) => `(module
  (memory (export "memory") 1)
  (global $runs (export "runs") (mut i32) (i32.const 0))
  (func (export "run") (param i32) (result i32)
    (global.set $runs (i32.add (global.get $runs) (i32.const 1))) (i32.const 0))
  (func (export "digest") (result i64)
    (if (i32.ge_s (global.get $runs) (i32.const ${after})) (then (loop $l (br $l))))
    (i64.extend_i32_u (global.get $runs))))`;

async function kernelWith(module: string) {
  const images = createImageStoreOn(memoryBlobs());
  await images.putModule('guest', await wasmOf(module));
  const kernel = aKernel(images, { guestBudgetMs: 100 });
  await kernel.start({ id: 'ok', fence: 1, guest: { kind: 'cpu', params: { rate: 100_000 } }, memPages: 1 });
  await kernel.start({ id: 'bad', fence: 1, guest: { kind: 'module:guest' }, memPages: 1 });
  return kernel;
}

describe('measuring', () => {
  it('takes the digests in the tick before a measure it foresees, so that measure starts no watchdog batch', async () => {
    const kernel = aKernel(createImageStoreOn(memoryBlobs()));
    await kernel.start({ id: 'a', fence: 1, guest: { kind: 'cpu', params: { rate: 100_000 } }, memPages: 1 });
    runTicks(kernel, 5);
    const first = kernel.measure(); // learns the period: 5 ticks
    runTicks(kernel, 5);
    const batches = kernel.stats().watchdogBatches;
    const second = kernel.measure();
    expect(kernel.stats().watchdogBatches).toBe(batches);
    expect(second[0]!.digest).toBe(kernel.digest('a'));
    expect(second[0]!.digest).not.toBe(first[0]!.digest);
  });

  it('starts no watchdog batch for a tick or a measure when no guest is ready', async () => {
    const kernel = aKernel(createImageStoreOn(memoryBlobs()));
    await kernel.start({ id: 'a', fence: 1, guest: { kind: 'cpu' }, memPages: 1, paused: true });
    const digest = kernel.measure()[0]!.digest; // a fresh guest's first digest needs a batch
    const batches = kernel.stats().watchdogBatches;
    runTicks(kernel, 3);
    expect(kernel.measure()[0]!.digest).toBe(digest);
    expect(kernel.stats().watchdogBatches).toBe(batches);
    expect(kernel.stats().ticks).toBe(3);
  });

  it('digests again in measure a guest that ran after the foreseen tick, and none that did not run', async () => {
    const kernel = aKernel(createImageStoreOn(memoryBlobs()));
    await kernel.start({ id: 'a', fence: 1, guest: { kind: 'cpu', params: { rate: 100_000 } }, memPages: 1 });
    runTicks(kernel, 3);
    kernel.measure();
    runTicks(kernel, 4); // one tick later than foreseen
    expect(kernel.measure()[0]!.digest).toBe(kernel.digest('a'));
    kernel.pause('a');
    const batches = kernel.stats().watchdogBatches;
    const digest = kernel.measure()[0]!.digest;
    expect(kernel.stats().watchdogBatches).toBe(batches);
    expect(digest).toBe(kernel.digest('a'));
  });

  it('fails a guest whose digest never returns when the tick takes it, and keeps its neighbour running', async () => {
    const kernel = await kernelWith(SPIN_DIGEST_LATER(4));
    runTicks(kernel, 2);
    expect(kernel.measure().every((m) => !m.error)).toBe(true); // period: 2 ticks
    runTicks(kernel, 2); // the second tick digests, and `bad` has run 4 times by then
    expect(kernel.failure('bad')).toMatch(/^timeout in digest after \d+ ms$/);
    const out = kernel.measure();
    expect(out.find((m) => m.id === 'bad')!.error).toBe(kernel.failure('bad'));
    expect(out.find((m) => m.id === 'ok')!.error).toBeUndefined();
    runTicks(kernel, 2);
    expect(kernel.measure().find((m) => m.id === 'ok')!.workDone).toBe(2 * 10_000);
  });
});

// The cool and hot guests of the migration bench: a start-up is imaged but measured as no paging.
const COOL = { kind: 'memory', params: { wsPages: 16, rate: 2_000, residentPages: 256 } } as const;
const HOT = { kind: 'memory', params: { wsPages: 64, rate: 200_000 } } as const;

describe('paging in the period a guest started in', () => {
  it("counts none of a fresh guest's start-up writes, though its first delta images all of them", async () => {
    const kernel = aKernel(createImageStoreOn(memoryBlobs()));
    await kernel.start({ id: 'cool', fence: 1, guest: COOL, memPages: 256, paused: true });
    const [m] = kernel.measure();
    expect(m!.residentPages).toBe(239); // init wrote a word into each of pages 17..255
    expect(m!.dirtiedPages).toBe(0);
    const image = await kernel.checkpoint('cool', 'delta');
    expect(image.pages).toBe(239);
  });

  it('counts only the working set a cool guest rewrites after its start, in the period it started in', async () => {
    const kernel = aKernel(createImageStoreOn(memoryBlobs()));
    await kernel.start({ id: 'cool', fence: 1, guest: COOL, memPages: 256 });
    runTicks(kernel, 5);
    const [m] = kernel.measure();
    expect(m!.dirtiedPages).toBeGreaterThan(0);
    expect(m!.dirtiedPages).toBeLessThanOrEqual(17); // the working set and the dirty map's page
    expect(dirtyRateOf({ ...m!, periodMs: 500 })).toBeLessThan(Number.POSITIVE_INFINITY);
  });

  it('still finds a hot guest rewriting all it holds, in the period it started in and after a restore', async () => {
    const images = createImageStoreOn(memoryBlobs());
    const kernel = aKernel(images);
    await kernel.start({ id: 'hot', fence: 1, guest: HOT, memPages: 66 });
    runTicks(kernel, 2);
    const [started] = kernel.measure();
    expect(dirtyRateOf({ ...started!, periodMs: 500 })).toBe(Number.POSITIVE_INFINITY);
    kernel.pause('hot');
    const { image } = await kernel.checkpoint('hot', 'delta');
    const target = aKernel(images, { nodeId: 'node-b' });
    await target.start({ id: 'hot', fence: 2, guest: HOT, memPages: 66, image });
    runTicks(target, 2);
    const [arrived] = target.measure();
    expect(dirtyRateOf({ ...arrived!, periodMs: 500 })).toBe(Number.POSITIVE_INFINITY);
  });
});
