// Hostile guests for isolation tests, as WAT: each breaks the host's budget in one way; and the
// WAT compiler every test (and the kernel bench) builds its modules with.
import wabtInit from 'wabt';

/** `run` never returns. */
export const SPIN_RUN = `(module
  (memory (export "memory") 1)
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param i32) (result i32) (loop $forever (br $forever)) (i32.const 0))
  (func (export "digest") (result i64) (i64.const 1)))`;

/** `digest` traps. */
export const TRAP_DIGEST = `(module
  (memory (export "memory") 1)
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param i32) (result i32) (i32.const 1))
  (func (export "digest") (result i64) unreachable))`;

/** `run` grows memory by a page per call, without bound. */
export const GROW_RUN = `(module
  (memory (export "memory") 1)
  (global $pages (export "pages") (mut i32) (i32.const 0))
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param i32) (result i32)
    (global.set $pages (memory.grow (i32.const 1)))
    (i32.const 1))
  (func (export "digest") (result i64) (i64.extend_i32_s (global.get $pages))))`;

/** `init` never returns. */
export const SPIN_INIT = `(module
  (memory (export "memory") 1)
  (func (export "init") (loop $forever (br $forever)))
  (func (export "run") (param i32) (result i32) (i32.const 0))
  (func (export "digest") (result i64) (i64.const 1)))`;

/** A start function that never returns (runs at instantiation, before `init`). */
export const SPIN_START = `(module
  (memory (export "memory") 1)
  (func $start (loop $forever (br $forever)))
  (start $start)
  (func (export "run") (param i32) (result i32) (i32.const 0))
  (func (export "digest") (result i64) (i64.const 1)))`;

/** Declares more initial memory (8 pages) than a small VM has. */
export const BIG_MEMORY = `(module
  (memory (export "memory") 8)
  (func (export "run") (param i32) (result i32) (i32.const 0))
  (func (export "digest") (result i64) (i64.const 1)))`;

/** The wasm binary of a WAT module. */
export async function wasmOf(source: string): Promise<Uint8Array> {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat('test.wat', source);
  try {
    return new Uint8Array(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}

/** `run` writes one new 64 KiB disk block per call, without bound; `digest` counts refused writes. */
export const FILL_DISK = `(module
  (import "env" "disk_write" (func $write (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (export "next") (mut i32) (i32.const 0))
  (global $refused (export "refused") (mut i64) (i64.const 0))
  (func (export "demand") (param i32) (result i32) (i32.const 1))
  (func (export "run") (param i32) (result i32)
    (if (i32.lt_s (call $write (i32.mul (global.get $next) (i32.const 65536)) (i32.const 0) (i32.const 65536)) (i32.const 0))
      (then (global.set $refused (i64.add (global.get $refused) (i64.const 1))))
      (else (global.set $next (i32.add (global.get $next) (i32.const 1)))))
    (i32.const 1))
  (func (export "digest") (result i64) (global.get $refused)))`;
