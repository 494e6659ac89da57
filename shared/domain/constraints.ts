import { DEFAULT_DRIVERS } from './guests.ts';
// Constraints applied before selection: what may move, and where it may go.
import type { NodeInfo, VmInfo } from './types.ts';

/** Why a VM may not move to a given taker; stable codes for reasons and tests. */
export type Exclusion = 'busy' | 'pinned' | 'cooldown' | 'driver' | 'memory' | 'anti-affinity';

/** What the constraints need to know about the node that would take a VM. */
export interface TakerState {
  node: NodeInfo;
  memUsedPages: number;
  /** Anti-affinity groups present on the taker, with counts. */
  groups: Map<string, number>;
}

/** Whether the VM may leave its node at all this round (busy, pinned, cooling down). */
export function mayLeave(vm: VmInfo, now: number): Exclusion | undefined {
  if (vm.busy) return 'busy';
  if (vm.pinned) return 'pinned';
  if (vm.cooldownUntil !== undefined && vm.cooldownUntil > now) return 'cooldown';
  return undefined;
}

/** Whether the taker can receive the VM: its memory fits, and no VM of the same group is already there. */
export function mayEnter(vm: VmInfo, taker: TakerState): Exclusion | undefined {
  if (vm.driver !== undefined && !(taker.node.drivers ?? DEFAULT_DRIVERS).includes(vm.driver))
    return 'driver';
  if (taker.memUsedPages + vm.memPages > taker.node.memCapacityPages) return 'memory';
  if (vm.group !== undefined && (taker.groups.get(vm.group) ?? 0) > 0) return 'anti-affinity';
  return undefined;
}

/** The first constraint that stops the move, or undefined when the VM may go. */
export function excludedBy(vm: VmInfo, taker: TakerState, now: number): Exclusion | undefined {
  return mayLeave(vm, now) ?? mayEnter(vm, taker);
}
