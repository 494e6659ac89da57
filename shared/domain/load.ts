// The load formula of Fig. 4: a VM's load is its measured factors weighted by the node's weights.
import type { LoadFactors, NodeInfo, VmInfo, Weights } from './types.ts';

/** A VM's load on a node with the given weights: W_cpu·cpu + W_io·io + W_mem·mem (+ paging, net). */
export function vmLoad(factors: LoadFactors, weights: Weights): number {
  return (
    weights.cpu * factors.cpu +
    weights.io * factors.io +
    weights.mem * factors.mem +
    (weights.paging ?? 0) * (factors.paging ?? 0) +
    (weights.net ?? 0) * (factors.net ?? 0)
  );
}

/** A node's load: the administrator's override if set, else the sum of the given VMs' loads under its weights. */
export function nodeLoad(node: NodeInfo, vms: readonly VmInfo[]): number {
  if (node.loadOverride !== undefined) return node.loadOverride;
  let sum = 0;
  for (const vm of vms) sum += vmLoad(vm.factors, node.weights);
  return sum;
}
