// The newest balancing run, for the cluster summary.
import type { Clients } from '../../shared/storage/clients.ts';
import { listRuns, type RunRecord } from '../../shared/storage/runs.ts';

export async function lastRun(clients: Clients): Promise<RunRecord | undefined> {
  return (await listRuns(clients, { limit: 1 })).items[0];
}
