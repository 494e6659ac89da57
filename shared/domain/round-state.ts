// The bookkeeping of one balancing round: node loads, budgets, VMs per node and takers' memory and
// groups, kept in arrays indexed like `input.nodes` and updated move by move.
import { type Exclusion, excludedBy, type TakerState } from './constraints.ts';
import { vmLoad } from './load.ts';
import type { Candidate } from './selection.ts';
import { chooseTrigger, type TriggerChoice } from './trigger.ts';
import type { BalancingConfig, Move, NodeInfo, PairDecision, Reason, RoundInput, VmInfo } from './types.ts';

/** Swaps are for givers in this upper share of the excess of the most loaded node over the mean. */
export const SWAP_SHARE = 0.5;

/** Mutable bookkeeping for one round; per-node figures live in arrays indexed like `input.nodes`. */
export interface RoundState {
  input: RoundInput;
  config: BalancingConfig;
  index: Map<string, number>;
  loads: Float64Array;
  budget: Float64Array;
  /** VMs of node i are `vms[order[start[i]]] … vms[order[start[i + 1] - 1]]`. */
  start: Int32Array;
  order: Int32Array;
  vmLists: (VmInfo[] | undefined)[];
  /** Memory and groups per node, built the first time a node takes part in an exchange. */
  takers: (TakerState | undefined)[];
  clusterBudget: number;
  /** The load each node would have if the shard were perfectly even (draining nodes excluded). */
  mean: number;
  /**
   * Givers at or above this load may swap when no single move helps: the upper half of the excess over
   * the mean, where the maximum is. Swaps elsewhere cost two migrations for little.
   */
  swapFloor: number;
  /** The trigger this round uses (the configured one, or the one `auto` chose). */
  trigger: TriggerChoice;
  /** VMs already moved this round, once a node may give in a second exchange (see `spill`). */
  gone?: Set<string>;
}

export const at = (state: RoundState, id: string) => state.index.get(id) as number;
export const nodeOf = (state: RoundState, id: string) => state.input.nodes[at(state, id)] as NodeInfo;
export const loadOf = (state: RoundState, id: string) => state.loads[at(state, id)] as number;
export const budgetOf = (state: RoundState, id: string) => state.budget[at(state, id)] as number;

/** Index the round's input: loads under each node's weights (or its override), budgets, VMs per node. */
export function prepareRound(input: RoundInput, config: BalancingConfig): RoundState {
  const n = input.nodes.length;
  const index = new Map<string, number>();
  for (let i = 0; i < n; i++) index.set((input.nodes[i] as NodeInfo).id, i);
  // One pass over the VMs: node of each VM, loads under each node's weights, counts per node. The
  // weights sit in flat arrays, and a VM on the same node as the one before skips the id lookup
  // (reports list a node's VMs together); the sum is vmLoad's, term by term.
  const w = weightArrays(input.nodes);
  const vmNode = new Int32Array(input.vms.length);
  const start = new Int32Array(n + 1);
  const loads = new Float64Array(n);
  let lastNode: string | undefined;
  let last = -1;
  for (let v = 0; v < input.vms.length; v++) {
    const vm = input.vms[v] as VmInfo;
    if (vm.node !== lastNode) {
      lastNode = vm.node;
      last = index.get(vm.node) ?? -1;
    }
    const i = last;
    vmNode[v] = i;
    if (i < 0) continue;
    start[i + 1] = (start[i + 1] as number) + 1;
    const f = vm.factors;
    loads[i] =
      (loads[i] as number) +
      ((w.cpu[i] as number) * f.cpu +
        (w.io[i] as number) * f.io +
        (w.mem[i] as number) * f.mem +
        (w.paging[i] as number) * (f.paging ?? 0) +
        (w.net[i] as number) * (f.net ?? 0));
  }
  for (let i = 0; i < n; i++) start[i + 1] = (start[i + 1] as number) + (start[i] as number);
  const order = new Int32Array(start[n] as number);
  const fill = start.slice(0, n);
  for (let v = 0; v < input.vms.length; v++) {
    const i = vmNode[v] as number;
    if (i < 0) continue;
    order[fill[i] as number] = v;
    fill[i] = (fill[i] as number) + 1;
  }
  let total = 0;
  let receiving = 0;
  const { inFlight } = input;
  let clusterInFlight = 0;
  const budget = new Float64Array(n);
  const counted = new Map<string, number>();
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const node = input.nodes[i] as NodeInfo;
    if (node.loadOverride !== undefined) loads[i] = node.loadOverride;
    const load = loads[i] as number;
    total += load;
    if (!node.draining) {
      receiving++;
      counted.set(node.id, load);
      if (load > max) max = load;
    }
    const f = inFlight ? (inFlight[node.id] ?? 0) : 0;
    clusterInFlight += f;
    budget[i] = config.maxMigrationsPerNode - f;
  }
  const mean = receiving > 0 ? total / receiving : 0;
  return {
    input,
    config,
    index,
    loads,
    budget,
    start,
    order,
    vmLists: new Array(n),
    takers: new Array(n),
    clusterBudget: config.maxMigrationsPerCluster - clusterInFlight,
    mean,
    trigger: chooseTrigger(config, counted, input.expected),
    swapFloor: mean + SWAP_SHARE * (Math.max(max, mean) - mean),
  };
}

/** Each node's Fig. 4 weights as flat arrays (a missing paging or network weight is 0, as in vmLoad). */
function weightArrays(nodes: readonly NodeInfo[]) {
  const n = nodes.length;
  const w = {
    cpu: new Float64Array(n),
    io: new Float64Array(n),
    mem: new Float64Array(n),
    paging: new Float64Array(n),
    net: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    const x = (nodes[i] as NodeInfo).weights;
    w.cpu[i] = x.cpu;
    w.io[i] = x.io;
    w.mem[i] = x.mem;
    w.paging[i] = x.paging ?? 0;
    w.net[i] = x.net ?? 0;
  }
  return w;
}

/** The VMs on a node (as the round started), gathered on first use. */
export function vmsOf(state: RoundState, id: string): VmInfo[] {
  const i = at(state, id);
  let list = state.vmLists[i];
  if (!list) {
    list = [];
    for (let k = state.start[i] as number; k < (state.start[i + 1] as number); k++) {
      list.push(state.input.vms[state.order[k] as number] as VmInfo);
    }
    state.vmLists[i] = list;
  }
  return list;
}

/** The node's memory in use and anti-affinity groups, computed on first use. */
export function takerOf(state: RoundState, id: string): TakerState {
  const i = at(state, id);
  let t = state.takers[i];
  if (!t) {
    let mem = 0;
    const groups = new Map<string, number>();
    for (const vm of vmsOf(state, id)) {
      mem += vm.memPages;
      if (vm.group !== undefined) groups.set(vm.group, (groups.get(vm.group) ?? 0) + 1);
    }
    t = { node: state.input.nodes[i] as NodeInfo, memUsedPages: mem, groups };
    state.takers[i] = t;
  }
  return t;
}

/** The loads imbalance figures count: draining nodes are on their way out and are left out. */
export function countedLoads(state: RoundState): number[] {
  const out: number[] = [];
  state.input.nodes.forEach((node, i) => {
    if (!node.draining) out.push(state.loads[i] as number);
  });
  return out;
}

/** A VM of the giver as a candidate for the taker: its load on each side. */
export function candidateOf(vm: VmInfo, giver: NodeInfo, taker: NodeInfo): Candidate {
  return {
    vm,
    loadOnSource: vmLoad(vm.factors, giver.weights),
    loadOnTarget: vmLoad(vm.factors, taker.weights),
  };
}

/** The giver's VMs that may move to the taker, and how many each constraint kept back. */
export function candidatesFor(state: RoundState, giver: NodeInfo, taker: NodeInfo) {
  const takerState = takerOf(state, taker.id);
  const excluded = new Map<Exclusion, number>();
  const candidates: Candidate[] = [];
  const vms = vmsOf(state, giver.id);
  for (const vm of vms) {
    if (state.gone?.has(vm.id)) continue;
    const why = excludedBy(vm, takerState, state.input.now);
    if (why) {
      excluded.set(why, (excluded.get(why) ?? 0) + 1);
      continue;
    }
    candidates.push(candidateOf(vm, giver, taker));
  }
  return { candidates, excluded, total: vms.length };
}

export function hasBudget(state: RoundState, a: string, b: string): boolean {
  return state.clusterBudget > 0 && budgetOf(state, a) > 0 && budgetOf(state, b) > 0;
}

/** Record a move: update loads, both nodes' memory and groups, and spend the budgets. */
export function applyMove(state: RoundState, c: Candidate, giver: NodeInfo, taker: NodeInfo): Move {
  const g = at(state, giver.id);
  const t = at(state, taker.id);
  state.loads[g] = (state.loads[g] as number) - c.loadOnSource;
  state.loads[t] = (state.loads[t] as number) + c.loadOnTarget;
  const ts = takerOf(state, taker.id);
  ts.memUsedPages += c.vm.memPages;
  if (c.vm.group !== undefined) ts.groups.set(c.vm.group, (ts.groups.get(c.vm.group) ?? 0) + 1);
  const gs = takerOf(state, giver.id);
  gs.memUsedPages -= c.vm.memPages;
  if (c.vm.group !== undefined) gs.groups.set(c.vm.group, (gs.groups.get(c.vm.group) ?? 1) - 1);
  state.budget[g] = (state.budget[g] as number) - 1;
  state.budget[t] = (state.budget[t] as number) - 1;
  state.clusterBudget--;
  return {
    vm: c.vm.id,
    from: giver.id,
    to: taker.id,
    loadOnSource: c.loadOnSource,
    loadOnTarget: c.loadOnTarget,
  };
}

/** A builder of the pair's decision: loads as the exchange starts, predicted loads when it is made. */
export function resultFor(state: RoundState, requester: string, selected: string) {
  const loads = { requester: loadOf(state, requester), selected: loadOf(state, selected) };
  return (reason: Reason, moves: Move[] = []): PairDecision => ({
    requester,
    selected,
    loads,
    moves,
    reason,
    predicted: { requester: loadOf(state, requester), selected: loadOf(state, selected) },
  });
}

export type ResultBuilder = ReturnType<typeof resultFor>;

export function describe(excluded: Map<Exclusion, number>): string {
  return [...excluded].map(([why, n]) => `${n} ${why}`).join(', ');
}

export function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}
