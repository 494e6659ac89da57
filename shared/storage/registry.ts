// Items registered once under a name (guest modules, qemu images): a VM boots a name, so the bytes
// behind it must never change under it. Each kind gets the same three access patterns.
import type { Clients } from './clients.ts';
import { type Kind, kindIndexKey } from './keys.ts';
import { getItem, listKind, putItem } from './table.ts';

export interface NameRegistry<R extends { name: string }> {
  kind: Kind;
  /** Registers a record once; ConditionFailed(transition) if the name is taken. */
  register(clients: Clients, record: R): Promise<void>;
  /** The record registered under `name`, if any. */
  find(clients: Clients, name: string): Promise<R | undefined>;
  /** Every registered record, by name. */
  list(clients: Clients): Promise<R[]>;
}

/** The access patterns of one kind of named registration; `strip` drops the key attributes from an item. */
export function nameRegistry<R extends { name: string }>(
  kind: Kind,
  options: {
    key: (name: string) => { pk: string; sk: string };
    strip: (item: R) => R;
    /** The transition a lost race on the name reports, e.g. 'registerImage'. */
    transition: string;
  },
): NameRegistry<R> {
  const { key, strip, transition } = options;
  return {
    kind,
    async register(clients, record) {
      await putItem(clients, transition, {
        Item: { ...key(record.name), ...kindIndexKey(kind, record.name), ...record },
        ConditionExpression: 'attribute_not_exists(pk)',
      });
    },
    async find(clients, name) {
      const item = await getItem<R>(clients, key(name));
      return item ? strip(item) : undefined;
    },
    async list(clients) {
      return (await listKind<R>(clients, kind)).map(strip);
    },
  };
}
