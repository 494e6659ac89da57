// Balancing runs as the API reads them (wired to shared/storage/runs.ts when it lands).
import type { Clients } from '../../shared/storage/clients.ts';

export async function lastRun(_clients: Clients): Promise<unknown> {
  return undefined;
}
