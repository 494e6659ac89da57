import { describe, expect, it } from 'vitest';
import { guestBinary } from '../../../node-agent/guests/index.ts';
import { BUILTIN_GUESTS } from '../../../shared/domain/guests.ts';
import { validateGuestModule } from '../../../shared/guest-abi.ts';
import { wasmOf } from '../../support/hostile.ts';
import { CLOCK_GUEST } from './fixtures.ts';

const minimal = (body: string) => `(module ${body})`;
const MEMORY = '(memory (export "memory") 1)';
const RUN = '(func (export "run") (param i32) (result i32) (local.get 0))';
const DIGEST = '(func (export "digest") (result i64) (i64.const 7))';

async function problemsOf(source: string): Promise<string[]> {
  const result = validateGuestModule(await wasmOf(source));
  return result.ok ? [] : result.problems;
}

describe('guest ABI validation', () => {
  it.each(BUILTIN_GUESTS)('accepts the built-in %s guest', async (kind) => {
    const result = validateGuestModule(await guestBinary(kind));
    expect(result).toMatchObject({ ok: true });
  });

  it('reports the params a guest declares and the host functions it imports', async () => {
    const result = validateGuestModule(await guestBinary('io'));
    if (!result.ok) throw new Error(result.problems.join('; '));
    expect(result.exports.params).toEqual(['rate', 'opBytes', 'diskMiB']);
    expect(result.exports.imports).toEqual(['disk_read', 'disk_write']);
    expect(result.exports.memory.initialPages).toBe(2);
  });

  it('accepts a minimal guest and one importing the clock', async () => {
    expect(await problemsOf(minimal(MEMORY + RUN + DIGEST))).toEqual([]);
    expect(await problemsOf(CLOCK_GUEST)).toEqual([]);
  });

  it('rejects a module without run', async () => {
    expect(await problemsOf(minimal(MEMORY + DIGEST))).toEqual(['missing export "run" (i32) -> (i32)']);
  });

  it('rejects a module without an exported memory', async () => {
    expect(await problemsOf(minimal(`(memory 1) ${RUN} ${DIGEST}`))).toEqual([
      'missing export "memory" (the guest\'s linear memory)',
    ]);
  });

  it('names a wrong signature, an unknown import and a foreign import module', async () => {
    const problems = await problemsOf(
      minimal(`
        (import "env" "open_socket" (func (param i32) (result i32)))
        (import "wasi" "fd_write" (func (param i32) (result i32)))
        ${MEMORY}
        (func (export "run") (param i64) (result i32) (i32.const 0))
        (func (export "digest") (result i32) (i32.const 0))`),
    );
    expect(problems).toEqual([
      'import env.open_socket: unknown host function (known: vtod, disk_read, disk_write, net_send, series)',
      'import wasi.fd_write: guests may import only from module "env"',
      'export "run": expected (i32) -> (i32), found (i64) -> (i32)',
      'export "digest": expected () -> (i64), found () -> (i32)',
    ]);
  });

  it('rejects hidden mutable state, which a snapshot would lose', async () => {
    const problems = await problemsOf(
      minimal(`${MEMORY} (global $g (mut i32) (i32.const 0)) ${RUN} ${DIGEST}`),
    );
    expect(problems).toEqual(['mutable global 0 is not exported, so its state would be lost on suspend']);
  });

  it('knows which guests can never write their memory, so the kernel need not scan them', async () => {
    const writes = async (source: string) => {
      const result = validateGuestModule(await wasmOf(source));
      if (!result.ok) throw new Error(result.problems.join('; '));
      return result.exports.writesMemory;
    };
    for (const kind of BUILTIN_GUESTS) {
      const result = validateGuestModule(await guestBinary(kind));
      expect(result.ok && result.exports.writesMemory).toBe(kind === 'memory' || kind === 'io');
    }
    // constants whose bytes look like store opcodes (0x36..0x3e) are immediates, not stores
    const constants =
      '(drop (f64.const 1.7e-76)) (drop (i64.const 0x3636363636)) (drop (i32.load offset=54 (i32.const 0)))';
    expect(
      await writes(
        minimal(
          `${MEMORY} (func (export "run") (param i32) (result i32) ${constants} (local.get 0)) ${DIGEST}`,
        ),
      ),
    ).toBe(false);
    const store = '(block (br_table 0 0 (i32.const 0))) (i32.store8 (i32.const 1) (i32.const 2))';
    expect(
      await writes(
        minimal(`${MEMORY} (func (export "run") (param i32) (result i32) ${store} (local.get 0)) ${DIGEST}`),
      ),
    ).toBe(true);
    expect(
      await writes(
        minimal(
          `${MEMORY} (func (export "run") (param i32) (result i32) (memory.fill (i32.const 0) (i32.const 1) (i32.const 2)) (local.get 0)) ${DIGEST}`,
        ),
      ),
    ).toBe(true);
    expect(
      await writes(
        minimal(
          `(import "env" "disk_read" (func (param i32 i32 i32) (result i32))) ${MEMORY} ${RUN} ${DIGEST}`,
        ),
      ),
    ).toBe(true);
  });

  it('requires a dirty map to be an i32 global', async () => {
    expect(
      await problemsOf(minimal(`${MEMORY} (global (export "dirty_map") i64 (i64.const 0)) ${RUN} ${DIGEST}`)),
    ).toEqual(['export "dirty_map" must be an i32 global (the address of the dirty-page map)']);
  });

  it('rejects bytes that are not WebAssembly, without throwing', () => {
    const result = validateGuestModule(new TextEncoder().encode('definitely not wasm'));
    expect(result).toEqual({ ok: false, problems: ['not a WebAssembly module: bad magic number'] });
    expect(validateGuestModule(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 7, 9]))).toMatchObject({
      ok: false,
    });
  });
});
