// The in-memory cluster the simulator mutates: where each VM is, and each node's memory and groups.

import { PAGE_BYTES } from '../domain/guests.ts';
import { vmLoad } from '../domain/load.ts';
import type { NodeInfo, VmInfo } from '../domain/types.ts';

/** Node loads under each node's own weights (the simulator ignores load overrides: it measures). */
export function nodeLoads(nodes: readonly NodeInfo[], vms: readonly VmInfo[]): number[] {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const loads = new Array<number>(nodes.length).fill(0);
  for (const vm of vms) {
    const i = index.get(vm.node);
    if (i === undefined) continue;
    loads[i] = (loads[i] ?? 0) + vmLoad(vm.factors, (nodes[i] as NodeInfo).weights);
  }
  return loads;
}

/**
 * The lower bound on the maximum node load: max(total / N, largest VM) over the nodes that may hold
 * VMs. With different weights each VM counts at its smallest load on any node, so it stays a bound.
 */
export function lowerBound(nodes: readonly NodeInfo[], vms: readonly VmInfo[]): number {
  const receiving = nodes.filter((n) => !n.draining);
  if (receiving.length === 0) return 0;
  const weightSets = new Map(receiving.map((n) => [JSON.stringify(n.weights), n.weights]));
  let total = 0;
  let largest = 0;
  for (const vm of vms) {
    let least = Number.POSITIVE_INFINITY;
    for (const w of weightSets.values()) least = Math.min(least, vmLoad(vm.factors, w));
    total += least;
    largest = Math.max(largest, least);
  }
  return Math.max(total / receiving.length, largest);
}

/** The bytes a migration copies: the VM's whole memory (pre-copy rounds are not modelled). */
export function bytesOf(vm: VmInfo): number {
  return vm.memPages * PAGE_BYTES;
}

/** Copies of the VMs, so each strategy mutates its own placement. */
export function cloneVms(vms: readonly VmInfo[]): VmInfo[] {
  return vms.map((v) => ({ ...v, factors: { ...v.factors } }));
}
