// Settings of a VM that are not its state (target load, CPU limit, pinned, group), changed by an
// operator: one update conditional on the fence the caller read.
import type { Clients } from './clients.ts';
import { vmKey } from './keys.ts';
import { updateItem } from './table.ts';
import type { VmRecord } from './vms.ts';

export interface VmSettingsPatch {
  /** null clears it. */
  targetLoad?: number | null;
  /** null clears it; the owner applies it the next time it starts the guest. */
  cpuLimit?: number | null;
  pinned?: boolean;
  /** null clears it. */
  group?: string | null;
}

const SETTINGS = ['targetLoad', 'cpuLimit', 'pinned', 'group'] as const;

/** Changes the settings of a VM still at `fence`; ConditionFailed('patchVm') when absent or moved on. */
export function patchVmAtFence(
  clients: Clients,
  { id, fence, patch, now }: { id: string; fence: number; patch: VmSettingsPatch; now: number },
): Promise<VmRecord> {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':now': now, ':f': fence };
  const sets = ['updatedAt = :now'];
  const removes: string[] = [];
  for (const field of SETTINGS) {
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
