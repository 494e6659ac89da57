import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_GUESTS,
  DISK_BLOCK_BYTES,
  driverOf,
  isBuiltinGuest,
  offersDriver,
  PAGE_BYTES,
  parseGuest,
  WASM_GUEST_KIND,
} from '../../../shared/domain/guests.ts';

describe('guest kinds and their drivers', () => {
  it('parses qemu:<image> to the qemu driver with the image name', () => {
    expect(parseGuest('qemu:debian-12.qcow2')).toEqual({ driver: 'qemu', image: 'debian-12.qcow2' });
    expect(parseGuest('qemu:')).toEqual({ driver: 'qemu', image: '' });
  });

  it('gives every other kind, built-in, module or unknown, to the wasm kernel unchanged', () => {
    for (const kind of [...BUILTIN_GUESTS, 'module:counter', 'QEMU:x', 'qemu', 'x-qemu:y', ''])
      expect(parseGuest(kind)).toEqual({ driver: 'wasm', kind });
  });

  it('splits any kind so that the prefix and the rest give the kind back', () => {
    fc.assert(
      fc.property(fc.string(), (kind) => {
        const parsed = parseGuest(kind);
        const back = parsed.driver === 'qemu' ? `qemu:${parsed.image}` : parsed.kind;
        expect(back).toBe(kind);
        expect(driverOf(kind)).toBe(kind.startsWith('qemu:') ? 'qemu' : 'wasm');
      }),
    );
  });

  it('lets a node that declares no drivers run wasm guests only', () => {
    expect(offersDriver(undefined, 'cpu')).toBe(true);
    expect(offersDriver(undefined, 'qemu:disk')).toBe(false);
    expect(offersDriver(['qemu'], 'cpu')).toBe(false);
    expect(offersDriver(['wasm', 'qemu'], 'qemu:disk')).toBe(true);
  });

  it('accepts exactly the built-in guests and well-named modules as wasm guest kinds', () => {
    for (const kind of BUILTIN_GUESTS) expect(WASM_GUEST_KIND.test(kind), kind).toBe(true);
    expect(WASM_GUEST_KIND.test('module:my.mod_1')).toBe(true);
    for (const kind of ['cpux', 'module:', 'module:.x', 'module:a/b', 'qemu:img', `module:${'a'.repeat(65)}`])
      expect(WASM_GUEST_KIND.test(kind), kind).toBe(false);
    expect(isBuiltinGuest('idle')).toBe(true);
    expect(isBuiltinGuest('module:idle')).toBe(false);
  });

  it('uses one 64 KiB quantity for a page and a disk block', () => {
    expect(PAGE_BYTES).toBe(64 * 1024);
    expect(DISK_BLOCK_BYTES).toBe(PAGE_BYTES);
  });
});
