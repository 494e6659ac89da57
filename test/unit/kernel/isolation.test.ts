import { describe, expect, it } from 'vitest';
import { GuestFault } from '../../../node-agent/kernel/index.ts';
import { capMemory } from '../../../node-agent/kernel/limits.ts';
import { InvalidInput } from '../../../shared/storage/errors.ts';
import { createImageStoreOn, type ImageStore, memoryBlobs } from '../../../shared/storage/image-store.ts';
import {
  BIG_MEMORY,
  FILL_DISK,
  GROW_RUN,
  SPIN_INIT,
  SPIN_RUN,
  SPIN_START,
  TRAP_DIGEST,
  wasmOf,
} from '../../support/hostile.ts';
import { aKernel, runTicks } from './fixtures.ts';

// Generous against a loaded machine: a normal guest's call takes microseconds, a preempted one more.
const BUDGET_MS = 150;

async function storeWith(modules: Record<string, string>): Promise<ImageStore> {
  const images = createImageStoreOn(memoryBlobs());
  for (const [name, source] of Object.entries(modules)) await images.putModule(name, await wasmOf(source));
  return images;
}

/** A kernel with a normal cpu guest `ok` beside the hostile one. */
async function withNeighbour(module: string, memPages = 4) {
  const kernel = aKernel(await storeWith({ hostile: module }), { guestBudgetMs: BUDGET_MS });
  await kernel.start({ id: 'ok', fence: 1, guest: { kind: 'cpu', params: { rate: 100_000 } }, memPages: 1 });
  await kernel.start({ id: 'bad', fence: 1, guest: { kind: 'module:hostile' }, memPages });
  return kernel;
}

const workOf = (kernel: Awaited<ReturnType<typeof withNeighbour>>, id: string) =>
  kernel.measure().find((m) => m.id === id)!;

describe('the guest budget', () => {
  it('stops a run that never returns, fails that VM with a timeout reason, and keeps ticking its neighbour', async () => {
    const kernel = await withNeighbour(SPIN_RUN);
    runTicks(kernel, 3);
    const bad = workOf(kernel, 'bad');
    expect(bad.error).toMatch(/^timeout in run after \d+ ms$/);
    const ms = Number(/after (\d+) ms/.exec(bad.error!)![1]);
    // Calls start only in a batch's first budget and are stopped at two: at least one budget each.
    expect(ms).toBeGreaterThanOrEqual(BUDGET_MS - 1);
    expect(kernel.failure('bad')).toBe(bad.error);
    expect(kernel.failure('ok')).toBeUndefined();
    runTicks(kernel, 2);
    expect(workOf(kernel, 'ok').workDone).toBe(2 * 10_000);
    expect(kernel.running()).toEqual(['ok']);
  });

  it('fails a VM whose digest traps, with the trap in the reason, and still measures its neighbour', async () => {
    const kernel = await withNeighbour(TRAP_DIGEST);
    runTicks(kernel, 2);
    const out = kernel.measure();
    expect(out.find((m) => m.id === 'bad')!.error).toBe('trap in digest: unreachable');
    expect(out.find((m) => m.id === 'ok')!.workDone).toBe(2 * 10_000);
    expect(() => kernel.digest('bad')).toThrow(GuestFault);
    await expect(kernel.checkpoint('bad', 'full')).rejects.toThrow('trap in digest: unreachable');
  });

  it('fails a VM that grows its memory past memPages', async () => {
    const kernel = await withNeighbour(GROW_RUN, 4);
    runTicks(kernel, 10);
    expect(kernel.failure('bad')).toBe('memory limit of 4 pages exceeded');
    expect(workOf(kernel, 'ok').workDone).toBe(10 * 10_000);
  });

  it('has the engine itself refuse growth past one page over the limit', async () => {
    const images = await storeWith({ hostile: GROW_RUN });
    const bytes = await images.getModule('hostile');
    const module = await WebAssembly.compile(capMemory(bytes, 4) as BufferSource);
    const memory = new WebAssembly.Instance(module, {}).exports.memory as WebAssembly.Memory;
    memory.grow(4);
    expect(() => memory.grow(1)).toThrow(RangeError);
    expect(memory.buffer.byteLength / 65536).toBe(5);
  });

  it('fails the start of a guest whose init never returns, or whose start function never returns', async () => {
    const images = await storeWith({ init: SPIN_INIT, start: SPIN_START });
    const kernel = aKernel(images, { guestBudgetMs: BUDGET_MS });
    await expect(
      kernel.start({ id: 'a', fence: 1, guest: { kind: 'module:init' }, memPages: 1 }),
    ).rejects.toThrow(/^timeout in init after \d+ ms$/);
    await expect(
      kernel.start({ id: 'b', fence: 1, guest: { kind: 'module:start' }, memPages: 1 }),
    ).rejects.toBeInstanceOf(GuestFault);
    expect(kernel.has('a') || kernel.has('b')).toBe(false);
  });

  it('refuses a module that declares more initial memory than the VM has', async () => {
    const kernel = aKernel(await storeWith({ big: BIG_MEMORY }));
    await expect(
      kernel.start({ id: 'a', fence: 1, guest: { kind: 'module:big' }, memPages: 4 }),
    ).rejects.toThrow(InvalidInput);
    await kernel.start({ id: 'b', fence: 1, guest: { kind: 'module:big' }, memPages: 8 });
    expect(kernel.has('b')).toBe(true);
  });

  it('cuts a tick short rather than let many slow guests hold the node for long', async () => {
    const images = await storeWith({ hostile: SPIN_RUN });
    const kernel = aKernel(images, { guestBudgetMs: BUDGET_MS });
    for (let i = 0; i < 6; i++)
      await kernel.start({ id: `bad-${i}`, fence: 1, guest: { kind: 'module:hostile' }, memPages: 1 });
    kernel.tick();
    // A tick starts calls only during its first budget; the first spinning guest uses it up.
    expect(kernel.running()).toHaveLength(5);
    runTicks(kernel, 6);
    expect(kernel.running()).toEqual([]);
    expect(kernel.measure().every((m) => /^timeout in run/.test(m.error ?? ''))).toBe(true);
  });
});

describe('disk blocks in node memory', () => {
  it('refuses disk writes past the node memory capacity, leaves the neighbour be, and frees blocks when the VM goes', async () => {
    const images = await storeWith({ fill: FILL_DISK });
    const kernel = aKernel(images, { memCapacityPages: 40 });
    const [cpu, fill] = [
      { kind: 'cpu', params: { rate: 100_000 } },
      { kind: 'module:fill', params: { diskMiB: 64 } },
    ];
    await kernel.start({ id: 'ok', fence: 1, guest: cpu, memPages: 1 });
    await kernel.start({ id: 'fill', fence: 1, guest: fill, memPages: 1 });
    runTicks(kernel, 60);
    // 40 pages: 2 of guest memory, so 38 disk blocks; every later write is refused (-1 to the guest).
    expect(kernel.diskBlocks()).toBe(38);
    const out = kernel.measure();
    expect(out.find((m) => m.id === 'fill')).toMatchObject({
      diskBlocks: 38,
      digest: (22).toString(16).padStart(16, '0'),
    });
    expect(out.find((m) => m.id === 'ok')!.workDone).toBe(60 * 10_000);
    expect(kernel.failure('fill')).toBeUndefined();
    kernel.stop('fill');
    expect(kernel.diskBlocks()).toBe(0);
  });
});

describe('capMemory', () => {
  it('sets the maximum to one page over the limit, keeping a smaller declared maximum', async () => {
    const limits = async (source: string, cap: number) => {
      const module = await WebAssembly.compile(capMemory(await wasmOf(source), cap) as BufferSource);
      const memory = new WebAssembly.Instance(module, {}).exports.memory as WebAssembly.Memory;
      let pages = memory.buffer.byteLength / 65536;
      while (pages < 100) {
        try {
          memory.grow(1);
        } catch {
          break;
        }
        pages += 1;
      }
      return pages;
    };
    expect(await limits('(module (memory (export "memory") 1))', 7)).toBe(8);
    expect(await limits('(module (memory (export "memory") 1 3))', 7)).toBe(3);
    expect(await limits('(module (memory (export "memory") 1 30))', 7)).toBe(8);
    expect(() => capMemory(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 0, 9]), 4)).toThrow(
      InvalidInput,
    );
  });
});
