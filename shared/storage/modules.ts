// Registered guest modules: one table item per module (what it exports, its checksum), listed
// through the byKind index; the bytes themselves live in the image store (modules/<name>.wasm).
import type { GuestExports } from '../guest-abi.ts';
import type { Clients } from './clients.ts';
import { moduleKey } from './keys.ts';
import { nameRegistry } from './registry.ts';
import { deleteItem } from './table.ts';

export interface ModuleRecord {
  name: string;
  sha256: string;
  bytes: number;
  /** S3 key of the module's bytes. */
  key: string;
  exports: GuestExports;
  createdAt: number;
}

const strip = ({ name, sha256, bytes, key, exports, createdAt }: ModuleRecord): ModuleRecord => ({
  name,
  sha256,
  bytes,
  key,
  exports,
  createdAt,
});

/** Registered modules (register: ConditionFailed('registerModule') if the name is taken); find and list below. */
export const moduleRegistry = nameRegistry('MODULE', { key: moduleKey, strip, transition: 'registerModule' });

export const findModule = moduleRegistry.find;
/** Every registered module, by name. */
export const listModules = moduleRegistry.list;

/** Drops a registration whose bytes could not be stored. */
export async function forgetModule(clients: Clients, name: string): Promise<void> {
  await deleteItem(clients, 'forgetModule', moduleKey(name));
}
