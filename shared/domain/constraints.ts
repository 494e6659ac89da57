import { DEFAULT_DRIVERS } from './guests.ts';
// Constraints applied before selection: what may move, and where it may go.
import type { NodeInfo, VmInfo } from './types.ts';
import { BUSY, PINNED, type VmTable } from './vm-table.ts';

/** Why a VM may not move to a given taker; stable codes for reasons and tests. */
export type Exclusion = 'busy' | 'pinned' | 'cooldown' | 'driver' | 'memory' | 'anti-affinity';

/** What the constraints need to know about the node that would take a VM. */
export interface TakerState {
  node: NodeInfo;
  memUsedPages: number;
  /** Anti-affinity groups present on the taker, with counts. */
  groups: Map<string, number>;
}

/** Why the VM cannot leave its node this round (busy, pinned, cooling down); undefined if it may. */
export function cannotLeave(vm: VmInfo, now: number): Exclusion | undefined {
  if (vm.busy) return 'busy';
  if (vm.pinned) return 'pinned';
  if (vm.cooldownUntil !== undefined && vm.cooldownUntil > now) return 'cooldown';
  return undefined;
}

/**
 * Why the taker cannot receive the VM (its driver, its memory, a VM of the same group already
 * there); undefined if it may.
 */
export function cannotEnter(vm: VmInfo, taker: TakerState): Exclusion | undefined {
  if (vm.driver !== undefined && !(taker.node.drivers ?? DEFAULT_DRIVERS).includes(vm.driver))
    return 'driver';
  if (taker.memUsedPages + vm.memPages > taker.node.memCapacityPages) return 'memory';
  if (vm.group !== undefined && (taker.groups.get(vm.group) ?? 0) > 0) return 'anti-affinity';
  return undefined;
}

/** The first constraint that stops the move, or undefined when the VM may go. */
export function excludedBy(vm: VmInfo, taker: TakerState, now: number): Exclusion | undefined {
  return cannotLeave(vm, now) ?? cannotEnter(vm, taker);
}

/** `cannotLeave` for the VM at position `v` of the round's columns. */
export function cannotLeaveAt(vms: VmTable, v: number, now: number): Exclusion | undefined {
  const flags = vms.flags[v] as number;
  if (flags & BUSY) return 'busy';
  if (flags & PINNED) return 'pinned';
  // NaN (no cooldown) is never above now.
  if ((vms.cooldownUntil[v] as number) > now) return 'cooldown';
  return undefined;
}

/** `cannotEnter` for the VM at position `v` of the round's columns. */
export function cannotEnterAt(vms: VmTable, v: number, taker: TakerState): Exclusion | undefined {
  const driver = vms.driver?.[v];
  if (driver !== undefined && !(taker.node.drivers ?? DEFAULT_DRIVERS).includes(driver)) return 'driver';
  if (taker.memUsedPages + (vms.memPages[v] as number) > taker.node.memCapacityPages) return 'memory';
  const group = vms.group?.[v];
  if (group !== undefined && (taker.groups.get(group) ?? 0) > 0) return 'anti-affinity';
  return undefined;
}

/** `excludedBy` for the VM at position `v` of the round's columns. */
export function excludedAt(vms: VmTable, v: number, taker: TakerState, now: number): Exclusion | undefined {
  return cannotLeaveAt(vms, v, now) ?? cannotEnterAt(vms, v, taker);
}
