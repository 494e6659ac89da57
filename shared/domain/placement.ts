// Where a VM may be placed (created, resumed, restarted, settled, moved by hand) and which node is
// best: the balancer's own constraints (cannotEnter: memory, anti-affinity) plus liveness, drain and
// pin, and the balancer's own notion of load (each node's weights), so placement puts a VM where the
// balancer would leave it.

import { cannotEnter, type TakerState } from './constraints.ts';
import { type DriverName, driverOf, PAGE_BYTES } from './guests.ts';
import { nodeLoad, vmLoad } from './load.ts';
import type { LoadFactors, NodeInfo, VmInfo } from './types.ts';

/** A node is live while its lease has not lapsed. */
export const isLive = (node: { leaseUntil: number }, now: number) => node.leaseUntil >= now;

/** A node as placement sees it: the balancer's view plus its lease and the VMs of its last report. */
export interface PlacementNode extends NodeInfo {
  leaseUntil: number;
  vms: readonly Pick<VmInfo, 'factors' | 'memPages' | 'group'>[];
}

/** The VM to place: what it is expected to use, its memory, group and pin. */
export interface PlacementVm {
  /** Expected factors (see `expectedFactors`), or the last measured ones. */
  factors: LoadFactors;
  memPages: number;
  group?: string;
  pinned?: boolean;
  /** The node it leaves (a migration): never a candidate, and a pinned VM may not leave it. */
  leaving?: string;
  /** The driver it needs, when not the default wasm kernel. */
  driver?: DriverName;
}

export type PlacementExclusion =
  | 'dead'
  | 'draining'
  | 'driver'
  | 'memory'
  | 'anti-affinity'
  | 'pinned'
  | 'current';

export interface PlacementCandidate {
  node: string;
  /** The node's load now and with the VM, under the node's own weights (as the balancer computes it). */
  load: number;
  loadAfter: number;
}

export interface Placement {
  /** Nodes that may take the VM, best first: least load with it, then least load now, then id. */
  candidates: PlacementCandidate[];
  excluded: { node: string; reason: PlacementExclusion; detail: string }[];
}

/** Loads closer than this are equal (sums of products of decimals differ in the last bits). */
const TIE = 1e-9;

/** Bytes of one 64 KiB guest page, in GiB, as the kernel measures `mem`. */
const PAGE_GIB = PAGE_BYTES / 2 ** 30;

/**
 * What a new VM is expected to use before it is measured: its CPU limit in cores (a guest may use a
 * whole core when it has none), its memory, and no I/O.
 */
export function expectedFactors(vm: { memPages: number; cpuLimit?: number }): LoadFactors {
  return { cpu: vm.cpuLimit ?? 1, io: 0, mem: vm.memPages * PAGE_GIB };
}

/** A VM as placement sees it: its last measured factors if any, else its recorded ones, else the expected. */
export function placementVmOf(
  vm: {
    memPages: number;
    cpuLimit?: number;
    group?: string;
    factors?: LoadFactors;
    guest?: { kind: string };
  },
  measured?: LoadFactors,
): PlacementVm {
  const driver = vm.guest ? driverOf(vm.guest.kind) : 'wasm';
  return {
    factors: measured ?? vm.factors ?? expectedFactors(vm),
    memPages: vm.memPages,
    ...(vm.group !== undefined ? { group: vm.group } : {}),
    ...(driver !== 'wasm' ? { driver } : {}),
  };
}

function takerState(node: PlacementNode): TakerState {
  const groups = new Map<string, number>();
  let memUsedPages = 0;
  for (const vm of node.vms) {
    memUsedPages += vm.memPages;
    if (vm.group !== undefined) groups.set(vm.group, (groups.get(vm.group) ?? 0) + 1);
  }
  return { node, memUsedPages, groups };
}

/** Why one node may not take the VM, or undefined when it may. */
export function placementExclusion(
  node: PlacementNode,
  vm: PlacementVm,
  now: number,
): { reason: PlacementExclusion; detail: string } | undefined {
  const id = node.id;
  if (vm.leaving === id) return { reason: 'current', detail: `the VM already runs on ${id}` };
  if (vm.pinned && vm.leaving !== undefined)
    return { reason: 'pinned', detail: `the VM is pinned to ${vm.leaving}` };
  if (!isLive(node, now)) return { reason: 'dead', detail: `node ${id} is not live (its lease lapsed)` };
  if (node.draining) return { reason: 'draining', detail: `node ${id} is draining` };
  const probe: VmInfo = { id: '', node: '', factors: vm.factors, memPages: vm.memPages, pinned: false };
  if (vm.group !== undefined) probe.group = vm.group;
  if (vm.driver !== undefined) probe.driver = vm.driver;
  switch (cannotEnter(probe, takerState(node))) {
    case 'driver':
      return { reason: 'driver', detail: `node ${id} does not offer the ${vm.driver} driver` };
    case 'memory':
      return { reason: 'memory', detail: `node ${id} has no room for ${vm.memPages} more memory pages` };
    case 'anti-affinity':
      return {
        reason: 'anti-affinity',
        detail: `node ${id} already runs a VM of anti-affinity group ${vm.group}`,
      };
    default:
      return undefined;
  }
}

/** How to order the candidates: `prefer` names nodes to put first, the first of them that may take the VM. */
export interface PlacementOptions {
  prefer?: readonly string[] | undefined;
}

/**
 * The nodes that may take the VM, best first (or the first of `prefer` that may take it, then the
 * rest best first), and why each other node may not.
 */
export function placementCandidates(
  nodes: readonly PlacementNode[],
  vm: PlacementVm,
  now: number,
  { prefer = [] }: PlacementOptions = {},
): Placement {
  const candidates: PlacementCandidate[] = [];
  const excluded: Placement['excluded'] = [];
  for (const node of nodes) {
    const why = placementExclusion(node, vm, now);
    if (why) {
      excluded.push({ node: node.id, ...why });
      continue;
    }
    const load = nodeLoad(node, node.vms as VmInfo[]);
    candidates.push({ node: node.id, load, loadAfter: load + vmLoad(vm.factors, node.weights) });
  }
  // Loads within rounding of each other tie: then the node that carries less now takes it, so that
  // moving the VM back to the other cannot narrow the pair's gap (the balancer would do just that).
  candidates.sort((a, b) => {
    const after = a.loadAfter - b.loadAfter;
    if (Math.abs(after) > TIE) return after;
    return a.load - b.load || (a.node < b.node ? -1 : 1);
  });
  const first = prefer.find((id) => candidates.some((c) => c.node === id));
  if (first !== undefined) {
    const at = candidates.findIndex((c) => c.node === first);
    candidates.unshift(...candidates.splice(at, 1));
  }
  return { candidates, excluded };
}

/** The best node for the VM, preferring the first of `prefer` that may take it; undefined when none may. */
export function bestPlacement(
  nodes: readonly PlacementNode[],
  vm: PlacementVm,
  now: number,
  prefer: readonly string[] = [],
): string | undefined {
  return placementCandidates(nodes, vm, now, { prefer }).candidates[0]?.node;
}
