// Small builders for kernel tests: a settable clock, a kernel over any image store, a clock guest.
import { createKernel, type SeesawKernel } from '../../../node-agent/kernel/index.ts';
import type { KernelOptions } from '../../../node-agent/kernel/types.ts';
import type { Weights } from '../../../shared/domain/types.ts';
import { createImageStoreOn, type ImageStore, memoryBlobs } from '../../../shared/storage/image-store.ts';

export const TICK_MS = 100;
export const weights: Weights = { cpu: 1, io: 0.1, mem: 1, paging: 0.1, net: 0.1 };

export interface TestClock {
  now: () => number;
  advance(ms: number): void;
  set(ms: number): void;
}

export function aClock(start = 1_700_000_000_000): TestClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/** A kernel with room to spare unless `capacity` says otherwise. */
export function aKernel(
  images: ImageStore,
  options: Partial<Omit<KernelOptions, 'clock'>> & { clock?: TestClock } = {},
): SeesawKernel & { clock: TestClock } {
  const clock = options.clock ?? aClock();
  const kernel = createKernel(
    {
      nodeId: options.nodeId ?? 'node-a',
      capacity: options.capacity ?? 50_000_000,
      weights: options.weights ?? weights,
      tickMs: options.tickMs ?? TICK_MS,
      clock: clock.now,
      ...(options.guestBudgetMs !== undefined ? { guestBudgetMs: options.guestBudgetMs } : {}),
      ...(options.memCapacityPages !== undefined ? { memCapacityPages: options.memCapacityPages } : {}),
    },
    { images },
  );
  return Object.assign(kernel, { clock });
}

/** Runs n ticks, advancing the kernel's clock by a tick each time. */
export function runTicks(kernel: SeesawKernel & { clock: TestClock }, n: number) {
  for (let i = 0; i < n; i++) {
    kernel.tick();
    kernel.clock.advance(TICK_MS);
  }
}

/** A guest that records the vTOD it sees and counts every time it went backwards. */
export const CLOCK_GUEST = `(module
  (import "env" "vtod" (func $vtod (result f64)))
  (memory (export "memory") 1)
  (global $last (export "last") (mut f64) (f64.const 0))
  (global $backwards (export "backwards") (mut i64) (i64.const 0))
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param $budget i32) (result i32)
    (local $t f64)
    (local.set $t (call $vtod))
    (if (f64.lt (local.get $t) (global.get $last))
      (then (global.set $backwards (i64.add (global.get $backwards) (i64.const 1)))))
    (global.set $last (local.get $t))
    (i32.const 0))
  (func (export "digest") (result i64) (global.get $backwards)))`;

/** An image store in memory whose reads are counted by key; `blobs` is the store under it. */
export function countedStore() {
  const blobs = memoryBlobs();
  const reads: string[] = [];
  const store = createImageStoreOn({
    ...blobs,
    get: (key) => {
      reads.push(key);
      return blobs.get(key);
    },
  });
  return { blobs, store, reads };
}
