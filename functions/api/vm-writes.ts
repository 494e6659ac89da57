// The API's own fenced writes to a VM item: settings changes conditional on the fence the
// handler read, so a VM that moved or restarted meanwhile answers 409 and nothing changes.

import type { Clients } from '../../shared/storage/clients.ts';
import { vmKey } from '../../shared/storage/keys.ts';
import { updateItem } from '../../shared/storage/table.ts';
import type { VmRecord } from '../../shared/storage/vms.ts';

export interface VmSettingsPatch {
  /** null clears it. */
  targetLoad?: number | null;
  /** null clears it; the owner applies it the next time it starts the guest. */
  cpuLimit?: number | null;
  pinned?: boolean;
  /** null clears it. */
  group?: string | null;
}

/** Changes target load, pinned or group of a VM still at `fence`; ConditionFailed('patchVm') otherwise. */
export function patchVmAtFence(
  clients: Clients,
  id: string,
  fence: number,
  patch: VmSettingsPatch,
  now: number,
): Promise<VmRecord> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':now': now, ':f': fence };
  const sets = ['updatedAt = :now'];
  const removes: string[] = [];
  for (const field of ['targetLoad', 'cpuLimit', 'pinned', 'group'] as const) {
    const value = patch[field];
    if (value === undefined) continue;
    names[`#${field}`] = field;
    if (value === null) removes.push(`#${field}`);
    else {
      sets.push(`#${field} = :${field}`);
      values[`:${field}`] = value;
    }
  }
  return updateItem<VmRecord>(clients, 'patchVm', {
    Key: vmKey(id),
    UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
    ConditionExpression: 'attribute_exists(pk) AND fence = :f',
    ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
    ExpressionAttributeValues: values,
  });
}
