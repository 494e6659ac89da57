// The centralised greedy baseline (DRS-like): repeatedly make the single move that most reduces
// the standard deviation of node loads, until no move helps or the round's budget is spent.
import { cannotEnter, cannotLeave, type TakerState } from '../domain/constraints.ts';
import { vmLoad } from '../domain/load.ts';
import type { NodeInfo, VmInfo } from '../domain/types.ts';
import { bytesOf } from './cluster.ts';

/** How many of the most and least loaded nodes each step considers as sources and targets. */
const SOURCES = 8;
const TARGETS = 8;

export interface GreedyMove {
  vm: VmInfo;
  from: string;
  to: string;
  loadOnSource: number;
  loadOnTarget: number;
  bytes: number;
}

/** Placement state greedy keeps between rounds: VMs per node, memory and groups per node. */
export interface GreedyState {
  nodes: readonly NodeInfo[];
  vmsOf: VmInfo[][];
  takers: TakerState[];
  index: Map<string, number>;
}

export function greedyState(nodes: readonly NodeInfo[], vms: readonly VmInfo[]): GreedyState {
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const vmsOf: VmInfo[][] = nodes.map(() => []);
  const takers: TakerState[] = nodes.map((node) => ({ node, memUsedPages: 0, groups: new Map() }));
  for (const vm of vms) {
    const i = index.get(vm.node);
    if (i === undefined) continue;
    vmsOf[i]?.push(vm);
    const t = takers[i] as TakerState;
    t.memUsedPages += vm.memPages;
    if (vm.group !== undefined) t.groups.set(vm.group, (t.groups.get(vm.group) ?? 0) + 1);
  }
  return { nodes, vmsOf, takers, index };
}

/**
 * One greedy round over `loads` (indexed like `state.nodes`, updated in place). Draining nodes are
 * emptied first; `onMove` sees every move as it is made. Returns the number of moves.
 */
export function greedyRound(
  state: GreedyState,
  loads: Float64Array,
  budget: number,
  now: number,
  onMove: (m: GreedyMove) => void,
): number {
  let made = 0;
  const move = mover(state, loads, onMove);
  const apply = (vm: VmInfo, s: number, t: number) => {
    move(vm, s, t);
    made++;
  };
  // Evacuate draining nodes to the least loaded node that can take each VM.
  for (let s = 0; s < state.nodes.length && made < budget; s++) {
    if (!state.nodes[s]?.draining) continue;
    for (const vm of [...(state.vmsOf[s] ?? [])]) {
      if (made >= budget) break;
      if (cannotLeave(vm, now)) continue;
      const t = extremes(state, loads, state.nodes.length, false).find(
        (i) => cannotEnter(vm, state.takers[i] as TakerState) === undefined,
      );
      if (t !== undefined) apply(vm, s, t);
    }
  }
  while (made < budget) {
    const sources = extremes(state, loads, SOURCES, true);
    const targets = extremes(state, loads, TARGETS, false);
    let best: { vm: VmInfo; s: number; t: number } | undefined;
    let bestDelta = -1e-9;
    for (const s of sources) {
      const ls = loads[s] ?? 0;
      const sw = (state.nodes[s] as NodeInfo).weights;
      for (const vm of state.vmsOf[s] ?? []) {
        if (cannotLeave(vm, now)) continue;
        const a = vmLoad(vm.factors, sw);
        for (const t of targets) {
          if (t === s) continue;
          const lt = loads[t] ?? 0;
          const b = vmLoad(vm.factors, (state.nodes[t] as NodeInfo).weights);
          // Change in the sum of squares, which moves with the variance (the mean is unchanged
          // under identical weights).
          const delta = (ls - a) ** 2 - ls ** 2 + (lt + b) ** 2 - lt ** 2;
          if (delta < bestDelta && cannotEnter(vm, state.takers[t] as TakerState) === undefined) {
            best = { vm, s, t };
            bestDelta = delta;
          }
        }
      }
    }
    if (!best) break;
    apply(best.vm, best.s, best.t);
  }
  return made;
}

/** The `k` non-draining nodes with the highest (or lowest) loads, most extreme first. */
function extremes(state: GreedyState, loads: Float64Array, k: number, highest: boolean): number[] {
  const picked: number[] = [];
  const better = (x: number, y: number) => (highest ? x > y : x < y);
  for (let i = 0; i < state.nodes.length; i++) {
    if (state.nodes[i]?.draining) continue;
    const l = loads[i] ?? 0;
    if (picked.length === k && !better(l, loads[picked[k - 1] as number] ?? 0)) continue;
    let j = picked.length < k ? picked.length : k - 1;
    picked[j] = i;
    while (j > 0 && better(l, loads[picked[j - 1] as number] ?? 0)) {
      picked[j] = picked[j - 1] as number;
      picked[j - 1] = i;
      j--;
    }
  }
  return picked;
}

/** Carries out one move on the simulated cluster: lists, memory, groups and loads follow the VM. */
export function mover(state: GreedyState, loads: Float64Array, onMove: (m: GreedyMove) => void) {
  return (vm: VmInfo, s: number, t: number) => {
    const source = state.nodes[s] as NodeInfo;
    const target = state.nodes[t] as NodeInfo;
    const a = vmLoad(vm.factors, source.weights);
    const b = vmLoad(vm.factors, target.weights);
    const list = state.vmsOf[s] as VmInfo[];
    list.splice(list.indexOf(vm), 1);
    state.vmsOf[t]?.push(vm);
    const st = state.takers[s] as TakerState;
    const tt = state.takers[t] as TakerState;
    st.memUsedPages -= vm.memPages;
    tt.memUsedPages += vm.memPages;
    if (vm.group !== undefined) {
      st.groups.set(vm.group, (st.groups.get(vm.group) ?? 1) - 1);
      tt.groups.set(vm.group, (tt.groups.get(vm.group) ?? 0) + 1);
    }
    vm.node = target.id;
    loads[s] = (loads[s] ?? 0) - a;
    loads[t] = (loads[t] ?? 0) + b;
    onMove({ vm, from: source.id, to: target.id, loadOnSource: a, loadOnTarget: b, bytes: bytesOf(vm) });
  };
}
