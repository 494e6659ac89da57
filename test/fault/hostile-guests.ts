// Hostile guests for the fault harness: the three kinds of issue 13 (a `run` that never returns, a
// `digest` that traps, a memory that grows without bound), each either at once or only after some
// runs, so that a hostile VM can be ordered, migrated or moved by the reaper before it turns.
import type { ImageStore } from '../../shared/storage/image-store.ts';
import { wasmOf } from '../support/hostile.ts';

export const HOSTILE_KINDS = ['spin', 'trap', 'grow'] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/** Runs before the guest turns hostile (0: at once). */
export const HOSTILE_DELAYS = [0, 12, 30] as const;

/**
 * The WAT of a hostile guest that behaves for `after` calls of `run` (counted in an exported global,
 * so the count travels with its images), then:
 * - spin: `run` loops forever;
 * - trap: `digest` hits `unreachable`;
 * - grow: `run` grows memory by one page per call (every call, without bound).
 */
export function hostileWat(kind: HostileKind, after: number): string {
  const count = `(global.set $runs (i32.add (global.get $runs) (i32.const 1)))`;
  const turned = `(i32.ge_s (global.get $runs) (i32.const ${after}))`;
  const run = {
    spin: `(if ${turned} (then (loop $forever (br $forever)))) ${count}`,
    trap: count,
    grow: `(if ${turned} (then (drop (memory.grow (i32.const 1))))) ${count}`,
  }[kind];
  const digest =
    kind === 'trap'
      ? `(if ${turned} (then unreachable)) (i64.extend_i32_s (global.get $runs))`
      : '(i64.extend_i32_s (global.get $runs))';
  return `(module
  (memory (export "memory") 1)
  (global $runs (export "runs") (mut i32) (i32.const 0))
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param i32) (result i32) ${run} (i32.const 1))
  (func (export "digest") (result i64) ${digest}))`;
}

export const hostileModule = (kind: HostileKind, after: number) => `fault-${kind}-${after}`;

/** The reason a hostile VM must end FAILED with (the call a trap or timeout hits depends on timing). */
export function expectedReason(kind: HostileKind, memPages: number): RegExp {
  switch (kind) {
    case 'spin':
      return /^timeout in run after \d+ ms$/;
    case 'trap':
      return /^trap in (digest|restore): unreachable$/;
    case 'grow':
      return new RegExp(`^memory limit of ${memPages} pages exceeded$`);
  }
}

const registered = new WeakMap<ImageStore, Promise<void>>();

/** Stores every hostile module in a lane's bucket, once per image store. */
export function registerHostileModules(images: ImageStore): Promise<void> {
  let done = registered.get(images);
  if (!done) {
    done = (async () => {
      for (const kind of HOSTILE_KINDS)
        for (const after of HOSTILE_DELAYS)
          await images.putModule(hostileModule(kind, after), await wasmOf(hostileWat(kind, after)));
    })();
    registered.set(images, done);
  }
  return done;
}
