// The built-in guests: WAT sources in this folder, compiled with wabt on first use and cached
// for the life of the process (compiling all five takes a few milliseconds). The bundle (dist/)
// ships them precompiled beside it, so an agent installed from it needs no wabt.
import { existsSync, readFileSync } from 'node:fs';
import type wabtInit from 'wabt';
import type { BuiltinGuest } from '../../shared/domain/guests.ts';

/** The WAT source of a built-in guest. */
export function guestSource(kind: BuiltinGuest): string {
  return readFileSync(new URL(`./${kind}.wat`, import.meta.url), 'utf8');
}

let wabt: ReturnType<typeof wabtInit> | undefined;
const binaries = new Map<BuiltinGuest, Promise<Uint8Array>>();
const modules = new Map<BuiltinGuest, Promise<WebAssembly.Module>>();

/** The wasm binary of a built-in guest, compiled from its WAT source. */
export function guestBinary(kind: BuiltinGuest): Promise<Uint8Array> {
  let binary = binaries.get(kind);
  if (!binary) {
    binary = (async () => {
      const built = new URL(`./${kind}.wasm`, import.meta.url);
      if (existsSync(built)) return new Uint8Array(readFileSync(built));
      wabt ??= import('wabt').then((m) => m.default());
      const w = await wabt;
      const parsed = w.parseWat(`${kind}.wat`, guestSource(kind));
      try {
        parsed.validate();
        return new Uint8Array(parsed.toBinary({}).buffer);
      } finally {
        parsed.destroy();
      }
    })();
    binaries.set(kind, binary);
  }
  return binary;
}

/** The compiled WebAssembly.Module of a built-in guest. */
export function guestModule(kind: BuiltinGuest): Promise<WebAssembly.Module> {
  let module = modules.get(kind);
  if (!module) {
    module = guestBinary(kind).then((bytes) => WebAssembly.compile(bytes as BufferSource));
    modules.set(kind, module);
  }
  return module;
}
