// Digests in the tick before a foreseen measure, and measures that need no watchdog batch.
import { describe, expect, it } from 'vitest';
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
