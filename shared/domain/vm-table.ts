// The round's VMs in columns: one typed array per figure, indexed by the VM's position. A round over
// 100,000 VMs reads these instead of 100,000 `VmInfo` objects, which would have to be made for every
// run (and copied by the garbage collector, as they live for the whole run). The balancer's input
// builder fills the columns straight from the node items; `vmTableOf` fills them from `VmInfo`s.
import type { DriverName } from './guests.ts';
import type { LoadFactors, VmInfo } from './types.ts';

/** `flags` bits. */
export const BUSY = 1;
export const PINNED = 2;

export interface VmTable {
  count: number;
  ids: ArrayLike<string>;
  /** The VM's node: its position in the round's `nodes`, -1 for a node not in the round. */
  node: ArrayLike<number>;
  /** The VM's load under its node's weights (vmLoad's value). */
  load: ArrayLike<number>;
  /** The VM's measured factors (for its load on a node of other weights). */
  factorsOf(v: number): LoadFactors;
  memPages: ArrayLike<number>;
  /** BUSY and PINNED bits. */
  flags: ArrayLike<number>;
  /** NaN when the VM has no cooldown. */
  cooldownUntil: ArrayLike<number>;
  /** Anti-affinity groups and drivers, or undefined when no VM has one. */
  group: ArrayLike<string | undefined> | undefined;
  driver: ArrayLike<DriverName | undefined> | undefined;
  /** The VM at a position as a `VmInfo` (for the few steps that want the object, and for reasons). */
  info(v: number): VmInfo;
}

/**
 * The columns of `vms` (the same VMs, in the same order; `info` answers the objects themselves),
 * given each VM's node position and load.
 */
export function vmTableOf(vms: readonly VmInfo[], node: Int32Array, load: Float64Array): VmTable {
  const count = vms.length;
  const ids = new Array<string>(count);
  const memPages = new Float64Array(count);
  const flags = new Uint8Array(count);
  const cooldownUntil = new Float64Array(count);
  let group: (string | undefined)[] | undefined;
  let driver: (DriverName | undefined)[] | undefined;
  for (let v = 0; v < count; v++) {
    const vm = vms[v] as VmInfo;
    ids[v] = vm.id;
    memPages[v] = vm.memPages;
    flags[v] = (vm.busy ? BUSY : 0) | (vm.pinned ? PINNED : 0);
    cooldownUntil[v] = vm.cooldownUntil ?? Number.NaN;
    if (vm.group !== undefined) {
      group ??= new Array(count);
      group[v] = vm.group;
    }
    if (vm.driver !== undefined) {
      driver ??= new Array(count);
      driver[v] = vm.driver;
    }
  }
  const info = (v: number) => vms[v] as VmInfo;
  const factorsOf = (v: number) => (vms[v] as VmInfo).factors;
  return { count, ids, node, load, factorsOf, memPages, flags, cooldownUntil, group, driver, info };
}
