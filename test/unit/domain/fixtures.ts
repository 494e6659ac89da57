// Small builders for domain tests: a node, a VM, a config, a round.
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { decideRound } from '../../../shared/domain/decide.ts';
import type { PlacementNode } from '../../../shared/domain/placement.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, NodeInfo, RoundInput, VmInfo, Weights } from '../../../shared/domain/types.ts';

export const CPU: Weights = { cpu: 1, io: 0, mem: 0 };

export function aNode(over: Partial<NodeInfo> & { id: string }): NodeInfo {
  return { weights: CPU, capacity: 1000, memCapacityPages: 1_000_000, draining: false, ...over };
}

/** A VM whose CPU factor is `load`, so its load is `load` on a node with CPU-only unit weights. */
export function aVm(over: Partial<VmInfo> & { id: string; node: string; load?: number }): VmInfo {
  const { load = 1, ...rest } = over;
  return { factors: { cpu: load, io: 0, mem: 0 }, memPages: 16, pinned: false, ...rest };
}

export function aConfig(over: Partial<BalancingConfig> = {}): BalancingConfig {
  return { ...DEFAULT_BALANCING_CONFIG, thresholdFactor: 1, margin: 0, ...over };
}

export function aRound(nodes: NodeInfo[], vms: VmInfo[], over: Partial<RoundInput> = {}): RoundInput {
  return { nodes, vms, round: 0, now: 1_000_000, ...over };
}

/** VMs with the given loads on one node, named `<node>-<i>`. */
export function vmsOn(node: string, loads: number[], over: Partial<VmInfo> = {}): VmInfo[] {
  return loads.map((load, i) => aVm({ id: `${node}-${i}`, node, load, ...over }));
}

/** VMs with the given loads on each node, in the order of the keys (`vmsOn` for each). */
export function vmsOnEach(loads: Record<string, number[]>): VmInfo[] {
  return Object.entries(loads).flatMap(([node, nodeLoads]) => vmsOn(node, nodeLoads));
}

/** A drain scenario's nodes: `draining` drains and gives to the `receivers`, in that order. */
export function drainingNodes(draining: string, ...receivers: string[]): NodeInfo[] {
  return [aNode({ id: draining, draining: true }), ...receivers.map((id) => aNode({ id }))];
}

/** A node a VM may be placed on: live until 10 s after `now`, capacity 4, 1,024 pages, no VMs yet. */
export function aPlacementNode(
  id: string,
  over: Partial<PlacementNode> = {},
  now = 1_000_000,
): PlacementNode {
  return {
    ...aNode({ id, capacity: 4, memCapacityPages: 1024 }),
    leaseUntil: now + 10_000,
    vms: [],
    ...over,
  };
}

/**
 * Each exchange of a round (one run of decideRound, RNG seed 1) that moved VMs, as `giver-taker
 * loads`, in the order carried out; `nodes` as [id, its VMs' loads].
 */
export function movedExchanges(nodes: [string, number[]][], config: BalancingConfig): string[] {
  const d = decideRound(
    aRound(
      nodes.map(([id]) => aNode({ id })),
      nodes.flatMap(([id, sizes]) => vmsOn(id, sizes)),
    ),
    config,
    createRng(1),
  );
  return d.pairs
    .filter((p) => p.moves.length > 0)
    .map((p) => `${p.requester}-${p.selected} ${p.moves.map((m) => m.loadOnSource)}`);
}
