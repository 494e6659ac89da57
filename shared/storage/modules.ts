// Registered guest modules: one table item per module (what it exports, its checksum), listed
// through the byKind index; the bytes themselves live in the image store (modules/<name>.wasm).
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import type { GuestExports } from '../guest-abi.ts';
import type { Clients } from './clients.ts';
import { kindIndexKey, moduleKey } from './keys.ts';
import { getItem, listKind, putItem } from './table.ts';

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

/** Registers a module once; ConditionFailed('registerModule') if the name is taken. */
export async function registerModule(clients: Clients, record: ModuleRecord): Promise<void> {
  await putItem(clients, 'registerModule', {
    Item: { ...moduleKey(record.name), ...kindIndexKey('MODULE', record.name), ...record },
    ConditionExpression: 'attribute_not_exists(pk)',
  });
}

export async function findModule(clients: Clients, name: string): Promise<ModuleRecord | undefined> {
  const item = await getItem<ModuleRecord>(clients, moduleKey(name));
  return item ? strip(item) : undefined;
}

/** Every registered module, by name. */
export async function listModules(clients: Clients): Promise<ModuleRecord[]> {
  return (await listKind<ModuleRecord>(clients, 'MODULE')).map(strip);
}

/** Drops a registration whose bytes could not be stored. */
export async function forgetModule(clients: Clients, name: string): Promise<void> {
  await clients.doc.send(new DeleteCommand({ TableName: clients.tableName, Key: moduleKey(name) }));
}
