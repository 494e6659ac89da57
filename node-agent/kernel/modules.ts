// Guest modules as the kernel runs them: checked against the guest ABI once per kind, and compiled
// once per kind and memory cap. Built-in guests come from node-agent/guests, others from the image
// store's registered modules (`module:<name>`).
import { isBuiltinGuest, MODULE_GUEST_PREFIX } from '../../shared/domain/guests.ts';
import { type GuestGlobal, validateGuestModule } from '../../shared/guest-abi.ts';
import { InvalidInput } from '../../shared/storage/errors.ts';
import type { ImageStore } from '../../shared/storage/image-store.ts';
import { guestBinary, guestModule } from '../guests/index.ts';
import { capMemory } from './limits.ts';

export interface LoadedModule {
  module: WebAssembly.Module;
  globals: GuestGlobal[];
  writesMemory: boolean;
}

interface CheckedModule {
  bytes: Uint8Array;
  globals: GuestGlobal[];
  writesMemory: boolean;
}

export interface ModuleCache {
  /** The module of a guest kind compiled with its memory capped at `memPages`. */
  load(kind: string, memPages: number): Promise<LoadedModule>;
}

/** A promise cached under `key`, forgotten if it fails so that a later call tries again. */
function memo<T>(cache: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
  let value = cache.get(key);
  if (!value) {
    value = make();
    value.catch(() => cache.delete(key));
    cache.set(key, value);
  }
  return value;
}

export function createModuleCache(images: ImageStore): ModuleCache {
  const checked = new Map<string, Promise<CheckedModule>>();
  const compiled = new Map<string, Promise<LoadedModule>>();

  const check = (kind: string) =>
    memo(checked, kind, async () => {
      if (isBuiltinGuest(kind)) {
        const bytes = await guestBinary(kind);
        const abi = validateGuestModule(bytes);
        if (!abi.ok) throw new Error(`built-in guest ${kind} breaks the ABI: ${abi.problems.join('; ')}`);
        return { bytes, ...abi.exports };
      }
      if (!kind.startsWith(MODULE_GUEST_PREFIX)) throw new InvalidInput(`unknown guest kind "${kind}"`);
      const bytes = await images.getModule(kind.slice(MODULE_GUEST_PREFIX.length));
      const abi = validateGuestModule(bytes);
      if (!abi.ok) throw new InvalidInput(`module ${kind} breaks the guest ABI: ${abi.problems.join('; ')}`);
      return { bytes, ...abi.exports };
    });

  return {
    load: (kind, memPages) =>
      memo(compiled, `${kind}#${memPages}`, async () => {
        const { bytes, globals, writesMemory } = await check(kind);
        const capped = capMemory(bytes, memPages);
        const module =
          capped === bytes && isBuiltinGuest(kind)
            ? await guestModule(kind)
            : await WebAssembly.compile(capped as BufferSource);
        return { module, globals, writesMemory };
      }),
  };
}
