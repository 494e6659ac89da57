// The API's use of the image store: does a guest module exist, and remove a deleted VM's images.
import type { Clients } from '../../shared/storage/clients.ts';
import { moduleKey } from '../../shared/storage/keys.ts';
import { getItem } from '../../shared/storage/table.ts';

export async function guestModuleExists(clients: Clients, name: string): Promise<boolean> {
  return (await getItem(clients, moduleKey(name))) !== undefined;
}

export async function removeVmImages(_clients: Clients, _id: string): Promise<void> {
  // Wired to the image store when it lands.
}
