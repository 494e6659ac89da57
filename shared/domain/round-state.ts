// The bookkeeping of one balancing round: node loads, budgets, VMs per node and takers' memory and
// groups, kept in arrays indexed like `input.nodes` and updated move by move.
import { cannotEnter, cannotEnterAt, type Exclusion, excludedAt, type TakerState } from './constraints.ts';
import { IdIndex } from './id-index.ts';
import { vmLoad } from './load.ts';
import { plainMaker } from './plain.ts';
import type { Candidate } from './selection.ts';
import { chooseTrigger, type LoadsById, type TriggerChoice } from './trigger.ts';
import type {
  BalancingConfig,
  Move,
  NodeInfo,
  PairDecision,
  Reason,
  RoundInput,
  VmInfo,
  Weights,
} from './types.ts';
import { type VmTable, vmTableOf } from './vm-table.ts';

/** Swaps are for givers in this upper share of the excess of the most loaded node over the mean. */
export const SWAP_SHARE = 0.5;

/** Mutable bookkeeping for one round; per-node figures live in arrays indexed like `input.nodes`. */
export interface RoundState {
  input: RoundInput;
  config: BalancingConfig;
  index: NodeIndex;
  loads: Float64Array;
  /** Each VM's load under the weights of the node it is on as the round starts (vmLoad's value). */
  vmLoads: Float64Array;
  /** The round's VMs in columns, by their position in the input. */
  vms: VmTable;
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
  /** The last two ids `at` looked up and their positions. */
  lastAt: { a: string | undefined; ai: number; b: string | undefined; bi: number };
  /**
   * VMs already moved this round, once a node may give in a second exchange (see `spill`). Always
   * present (undefined until then): added later, it changed the state's shape mid-round and V8 threw
   * away the code optimised for the first.
   */
  gone: Set<string> | undefined;
  /** Candidates of closed exchanges, for `candidatesFor` to fill again (see `recycle`). */
  spare: TableCandidate[];
  /**
   * Lists an exchange fills and, once `recycle` has handed them back, the next one fills again (see
   * `openExchange`): a round opens thousands of exchanges, one after the other, and new lists for
   * each were a fifth of what it allocated. `lent` while an exchange holds them.
   */
  reuse: { candidates: Candidate[]; pool: Candidate[]; moves: Move[]; lent: boolean; loads: Float64Array };
}

/**
 * The position of node `id` in `input.nodes`. An exchange asks about its two nodes over and over:
 * the last two answers are kept, so most calls skip the Map.
 */
export function at(state: RoundState, id: string): number {
  const last = state.lastAt;
  if (id === last.a) return last.ai;
  if (id === last.b) return last.bi;
  const i = state.index.get(id) as number;
  last.b = last.a;
  last.bi = last.ai;
  last.a = id;
  last.ai = i;
  return i;
}
export const nodeOf = (state: RoundState, id: string) => state.input.nodes[at(state, id)] as NodeInfo;
export const loadOf = (state: RoundState, id: string) => state.loads[at(state, id)] as number;
export const budgetOf = (state: RoundState, id: string) => state.budget[at(state, id)] as number;

/** Index the round's input: loads under each node's weights (or its override), budgets, VMs per node. */
export function prepareRound(input: RoundInput, given: BalancingConfig): RoundState {
  const config = fixedShape(given);
  const n = input.nodes.length;
  const index = nodeIndex(input.nodes);
  const { vmNode, start, loads, vmLoads } = placeVms(input, index);
  // The builder's columns hold node positions: with a node id listed twice they are not the index's.
  const table = input.table && index.size === n ? input.table : undefined;
  const vms = table ?? vmTableOf(input.vms, vmNode, vmLoads);
  for (let i = 0; i < n; i++) start[i + 1] = (start[i + 1] as number) + (start[i] as number);
  const order = vmsByNode(vmNode, start, n);
  const totals = nodeTotals(input, config, loads);
  return {
    input,
    config,
    index,
    loads,
    vmLoads,
    vms,
    budget: totals.budget,
    start,
    order,
    vmLists: new Array(n),
    takers: new Array(n),
    clusterBudget: config.maxMigrationsPerCluster - totals.clusterInFlight,
    mean: totals.mean,
    trigger: chooseTrigger(config, countedById(input.nodes, loads, index), input.expected),
    swapFloor: totals.mean + SWAP_SHARE * (Math.max(totals.max, totals.mean) - totals.mean),
    lastAt: { a: undefined, ai: -1, b: undefined, bi: -1 },
    gone: undefined,
    spare: [],
    reuse: { candidates: [], pool: [], moves: [], lent: false, loads: new Float64Array(16) },
  };
}

/**
 * The config as an object literal of every field, in one order (an absent one undefined), so that
 * every round's config has one shape. A config built property by property (a parsed item is) gets a
 * new hidden class each time once the process has built many objects keyed by ids (V8 then stops
 * sharing shapes grown from an empty object), and V8 threw away the exchange code optimised for
 * the last round's config in each of a process's first runs. Mapped over every key, so a field
 * added to BalancingConfig must be listed here.
 */
function fixedShape(c: BalancingConfig): BalancingConfig {
  const fixed: { [K in keyof Required<BalancingConfig>]: BalancingConfig[K] } = {
    pairing: c.pairing,
    withRandom: c.withRandom,
    selection: c.selection,
    thresholdFactor: c.thresholdFactor,
    margin: c.margin,
    highThreshold: c.highThreshold,
    lowThreshold: c.lowThreshold,
    direction: c.direction,
    multiVm: c.multiVm,
    maxMovesPerExchange: c.maxMovesPerExchange,
    cooldownMs: c.cooldownMs,
    maxMigrationsPerNode: c.maxMigrationsPerNode,
    maxMigrationsPerCluster: c.maxMigrationsPerCluster,
    reportStaleMs: c.reportStaleMs,
    shards: c.shards,
    aim: c.aim,
    trigger: c.trigger,
  };
  return fixed;
}

/** Node positions by id; `size` is the number of distinct ids. */
export interface NodeIndex {
  get(id: string): number | undefined;
  readonly size: number;
}

/**
 * The position of each node in `nodes` by id: an IdIndex, where a Map of 10,000 ids cost a megabyte
 * and its rehashes every round; with an id listed twice, a Map, whose last position wins as before.
 */
function nodeIndex(nodes: readonly NodeInfo[]): NodeIndex {
  const ids = nodes.map((node) => node.id);
  const { index, twins } = IdIndex.of(ids, ids.length);
  if (twins.length === 0) return index;
  const map = new Map<string, number>();
  for (let i = 0; i < ids.length; i++) map.set(ids[i] as string, i);
  return map;
}

/**
 * One pass over the VMs: the node of each VM, its load under that node's weights, each node's sum,
 * and how many VMs each node has (in `start[i + 1]`, not yet summed up). The weights sit in flat
 * arrays, and a VM on the same node as the one before skips the id lookup (reports list a node's VMs
 * together); the sum is vmLoad's, term by term. The input builder's figures, when given, are the
 * same sums in the same order, without touching the VMs.
 */
function placeVms(input: RoundInput, index: NodeIndex) {
  const n = input.nodes.length;
  const table = input.table && index.size === n ? input.table : undefined;
  const count = table ? table.count : input.vms.length;
  const vmNode = new Int32Array(count);
  const start = new Int32Array(n + 1);
  const loads = new Float64Array(n);
  const vmLoads = new Float64Array(count);
  const place = (v: number, i: number, load: number) => {
    vmNode[v] = i;
    if (i < 0) return;
    start[i + 1] = (start[i + 1] as number) + 1;
    vmLoads[v] = load;
    loads[i] = (loads[i] as number) + load;
  };
  const given = table ?? input.vmLoads;
  if (given && given.node.length === count && given.load.length === count) {
    for (let v = 0; v < count; v++) place(v, given.node[v] as number, given.load[v] as number);
    return { vmNode, start, loads, vmLoads };
  }
  const w = weightArrays(input.nodes);
  let lastNode: string | undefined;
  let last = -1;
  for (let v = 0; v < count; v++) {
    const vm = input.vms[v] as VmInfo;
    if (vm.node !== lastNode) {
      lastNode = vm.node;
      last = index.get(vm.node) ?? -1;
    }
    const i = last;
    if (i < 0) {
      vmNode[v] = i;
      continue;
    }
    const f = vm.factors;
    const load =
      (w.cpu[i] as number) * f.cpu +
      (w.io[i] as number) * f.io +
      (w.mem[i] as number) * f.mem +
      (w.paging[i] as number) * (f.paging ?? 0) +
      (w.net[i] as number) * (f.net ?? 0);
    place(v, i, load);
  }
  return { vmNode, start, loads, vmLoads };
}

/** The VMs' positions grouped by node: node i's are order[start[i]] up to order[start[i + 1]]. */
function vmsByNode(vmNode: Int32Array, start: Int32Array, n: number) {
  const order = new Int32Array(start[n] as number);
  const fill = start.slice(0, n);
  for (let v = 0; v < vmNode.length; v++) {
    const i = vmNode[v] as number;
    if (i < 0) continue;
    order[fill[i] as number] = v;
    fill[i] = (fill[i] as number) + 1;
  }
  return order;
}

/**
 * Per node: its load (an override replaces the measured one), its migration budget left after the
 * migrations in flight; over the cluster: the mean and maximum of the nodes that may receive, and
 * their loads for the trigger.
 */
function nodeTotals(input: RoundInput, config: BalancingConfig, loads: Float64Array) {
  const n = input.nodes.length;
  const inFlight = input.inFlight as Record<string, number>;
  let anyInFlight = false;
  for (const _ in inFlight) {
    anyInFlight = true;
    break;
  }
  let total = 0;
  let receiving = 0;
  let clusterInFlight = 0;
  const budget = new Float64Array(n);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const node = input.nodes[i] as NodeInfo;
    if (node.loadOverride !== undefined) loads[i] = node.loadOverride;
    const load = loads[i] as number;
    total += load;
    if (!node.draining) {
      receiving++;
      if (load > max) max = load;
    }
    const f = anyInFlight ? (inFlight[node.id] ?? 0) : 0;
    clusterInFlight += f;
    budget[i] = config.maxMigrationsPerNode - f;
  }
  const mean = receiving > 0 ? total / receiving : 0;
  return { budget, max, mean, clusterInFlight };
}

/**
 * The loads of the nodes that may receive, by id, in node order, for the trigger: read from the
 * arrays, unless a node id is listed twice, where a map keeps each id once (at its first place, with
 * its last load).
 */
function countedById(nodes: readonly NodeInfo[], loads: Float64Array, index: NodeIndex): LoadsById {
  const each = (fn: (load: number, id: string) => void) => {
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i] as NodeInfo;
      if (!node.draining) fn(loads[i] as number, node.id);
    }
  };
  if (index.size === nodes.length) return { forEach: each };
  const counted = new Map<string, number>();
  each((load, id) => counted.set(id, load));
  return counted;
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
      list.push(state.vms.info(state.order[k] as number));
    }
    state.vmLists[i] = list;
  }
  return list;
}

/** A node without anti-affinity groups shares this map until a grouped VM arrives (never written). */
const NO_GROUPS: Map<string, number> = new Map();

/** The node's memory in use and anti-affinity groups, computed on first use. */
export function takerOf(state: RoundState, id: string): TakerState {
  const i = at(state, id);
  let t = state.takers[i];
  if (!t) {
    let mem = 0;
    let groups = NO_GROUPS;
    const { memPages, group } = state.vms;
    for (let k = state.start[i] as number; k < (state.start[i + 1] as number); k++) {
      const v = state.order[k] as number;
      mem += memPages[v] as number;
      const g = group?.[v];
      if (g !== undefined) {
        if (groups === NO_GROUPS) groups = new Map();
        groups.set(g, (groups.get(g) ?? 0) + 1);
      }
    }
    t = { node: state.input.nodes[i] as NodeInfo, memUsedPages: mem, groups };
    state.takers[i] = t;
  }
  return t;
}

/** The loads imbalance figures count: draining nodes are on their way out and are left out. */
export function countedLoads(state: RoundState): Float64Array {
  const { nodes } = state.input;
  const out = new Float64Array(nodes.length);
  let k = 0;
  for (let i = 0; i < nodes.length; i++)
    if (!(nodes[i] as NodeInfo).draining) out[k++] = state.loads[i] as number;
  return out.subarray(0, k);
}

/**
 * The candidates' loads on the giver, largest first, in a buffer the round reuses (valid until the
 * next call): sorting a fresh array of numbers per exchange boxed every load.
 */
export function loadsLargestFirst(state: RoundState, candidates: readonly Candidate[]): Float64Array {
  const n = candidates.length;
  if (state.reuse.loads.length < n) state.reuse.loads = new Float64Array(2 * n);
  const loads = state.reuse.loads.subarray(0, n);
  for (let k = 0; k < n; k++) loads[k] = (candidates[k] as Candidate).loadOnSource;
  return loads.sort().reverse();
}

/** A VM of the giver as a candidate for the taker: its load on each side. */
export function candidateOf(vm: VmInfo, giver: NodeInfo, taker: NodeInfo): Candidate {
  return {
    vm,
    loadOnSource: vmLoad(vm.factors, giver.weights),
    loadOnTarget: vmLoad(vm.factors, taker.weights),
  };
}

/**
 * A candidate among the round's own VMs: its position in the round's columns, with the `VmInfo`
 * made only when a step asks for it (most never do).
 */
export class TableCandidate implements Candidate {
  // Declared only, and assigned in the constructor: a class field is first defined as undefined, after
  // which V8 stores each load written to it as a new boxed number (and `candidatesFor` writes them
  // again for every exchange); first written as numbers, they are overwritten in place.
  declare readonly state: RoundState;
  declare v: number;
  declare loadOnSource: number;
  declare loadOnTarget: number;

  constructor(state: RoundState, v: number, loadOnSource: number, loadOnTarget: number) {
    this.state = state;
    this.v = v;
    this.loadOnSource = loadOnSource;
    this.loadOnTarget = loadOnTarget;
  }

  get vm(): VmInfo {
    return this.state.vms.info(this.v);
  }
}

/** Why the taker cannot receive the candidate's VM (see `cannotEnter`), read from the columns when it can. */
export function cannotTake(c: Candidate, taker: TakerState): Exclusion | undefined {
  return c instanceof TableCandidate ? cannotEnterAt(c.state.vms, c.v, taker) : cannotEnter(c.vm, taker);
}

/**
 * Hands a closed exchange's candidates back for `candidatesFor` to fill again: a round makes about
 * ten per exchange, thousands of exchanges, and none outlives its exchange (moves copy what they
 * need). Only for candidates nothing refers to any more.
 */
export function recycle(state: RoundState, candidates: readonly Candidate[]): void {
  for (const c of candidates) if (c instanceof TableCandidate && c.state === state) state.spare.push(c);
  if (candidates === state.reuse.candidates) state.reuse.lent = false;
}

/**
 * The round's reusable candidate, pool and move lists for an exchange, or new ones while another
 * exchange still holds them (exchanges opened side by side, as tests do). The decision gets a copy
 * of the moves.
 */
export function exchangeLists(state: RoundState): {
  candidates: Candidate[];
  pool: Candidate[];
  moves: Move[];
} {
  const { reuse } = state;
  if (reuse.lent) return { candidates: [], pool: [], moves: [] };
  reuse.lent = true;
  reuse.moves.length = 0;
  return reuse;
}

/** What `candidatesFor` reports when no constraint kept a VM back (never written). */
const NOT_EXCLUDED: Map<Exclusion, number> = new Map();

/**
 * The giver's VMs that may move to the taker, and how many each constraint kept back; in `into`
 * (emptied first) when given.
 */
export function candidatesFor(state: RoundState, giver: NodeInfo, taker: NodeInfo, into: Candidate[] = []) {
  const takerState = takerOf(state, taker.id);
  let excluded = NOT_EXCLUDED;
  const candidates = into;
  let count = 0;
  const { now } = state.input;
  const { vms } = state;
  const i = at(state, giver.id);
  const first = state.start[i] as number;
  const end = state.start[i + 1] as number;
  // The giver's VMs are on it as the round started: their load there is already known, and a taker
  // of the same weights sees the same load (vmLoad of the same terms).
  const same = sameWeights(giver.weights, taker.weights);
  const gone = state.gone;
  for (let k = first; k < end; k++) {
    const v = state.order[k] as number;
    if (gone?.has(vms.ids[v] as string)) continue;
    const why = excludedAt(vms, v, takerState, now);
    if (why) {
      if (excluded === NOT_EXCLUDED) excluded = new Map();
      excluded.set(why, (excluded.get(why) ?? 0) + 1);
      continue;
    }
    const loadOnSource = state.vmLoads[v] as number;
    const loadOnTarget = same ? loadOnSource : vmLoad(vms.factorsOf(v), taker.weights);
    const c = state.spare.pop();
    if (c === undefined) {
      candidates[count++] = new TableCandidate(state, v, loadOnSource, loadOnTarget);
      continue;
    }
    c.v = v;
    c.loadOnSource = loadOnSource;
    c.loadOnTarget = loadOnTarget;
    candidates[count++] = c;
  }
  endAt(candidates, count);
  return { candidates, excluded, total: end - first };
}

/**
 * Ends a list refilled by index at `n` items. Setting the length keeps the list's room unless it is
 * set to 0 (V8 then drops it): emptying a reused list with `length = 0` would allocate it again.
 */
export function endAt<T>(list: T[], n: number): void {
  if (list.length !== n) list.length = n;
}

/** Whether two weights give every VM the same load (each term as vmLoad reads it). */
function sameWeights(a: Weights, b: Weights): boolean {
  return (
    a === b ||
    (Object.is(a.cpu, b.cpu) &&
      Object.is(a.io, b.io) &&
      Object.is(a.mem, b.mem) &&
      Object.is(a.paging ?? 0, b.paging ?? 0) &&
      Object.is(a.net ?? 0, b.net ?? 0))
  );
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
  const indexed = c instanceof TableCandidate;
  const { vms } = state;
  const memPages = indexed ? (vms.memPages[c.v] as number) : c.vm.memPages;
  ts.memUsedPages += memPages;
  const gs = takerOf(state, giver.id);
  gs.memUsedPages -= memPages;
  const group = indexed ? vms.group?.[c.v] : c.vm.group;
  if (group !== undefined) {
    if (ts.groups === NO_GROUPS) ts.groups = new Map();
    ts.groups.set(group, (ts.groups.get(group) ?? 0) + 1);
    if (gs.groups === NO_GROUPS) gs.groups = new Map();
    gs.groups.set(group, (gs.groups.get(group) ?? 1) - 1);
  }
  state.budget[g] = (state.budget[g] as number) - 1;
  state.budget[t] = (state.budget[t] as number) - 1;
  state.clusterBudget--;
  const vm = indexed ? (vms.ids[c.v] as string) : c.vm.id;
  return new MoveOf(vm, giver.id, taker.id, c.loadOnSource, c.loadOnTarget);
}

const MoveOf = plainMaker(function (
  this: Move,
  vm: string,
  from: string,
  to: string,
  loadOnSource: number,
  loadOnTarget: number,
) {
  this.vm = vm;
  this.from = from;
  this.to = to;
  this.loadOnSource = loadOnSource;
  this.loadOnTarget = loadOnTarget;
});

const LoadPairOf = plainMaker(function (this: PairDecision['loads'], requester: number, selected: number) {
  this.requester = requester;
  this.selected = selected;
});

const PairDecisionOf = plainMaker(function (
  this: PairDecision,
  requester: string,
  selected: string,
  loads: PairDecision['loads'],
  moves: Move[],
  reason: Reason,
  predicted: PairDecision['predicted'],
) {
  this.requester = requester;
  this.selected = selected;
  this.loads = loads;
  this.moves = moves;
  this.reason = reason;
  this.predicted = predicted;
});

/** A builder of the pair's decision: loads as the exchange starts, predicted loads when it is made. */
export function resultFor(state: RoundState, requester: string, selected: string) {
  const loads = new LoadPairOf(loadOf(state, requester), loadOf(state, selected));
  return (reason: Reason, moves: Move[] = []): PairDecision => {
    flatten(reason.detail);
    const predicted = new LoadPairOf(loadOf(state, requester), loadOf(state, selected));
    return new PairDecisionOf(requester, selected, loads, moves, reason, predicted);
  };
}

/** The last character `flatten` read (kept so that the read is not optimised away). */
let lastRead = 0;

/**
 * Makes a reason's text one flat string. A template's text is a tree of the pieces it joined (a few
 * hundred bytes for a one-line reason); the round keeps every pair's reason to the end of the run,
 * so the garbage collector would copy each tree. Reading a character flattens it in place (the
 * pieces become garbage): the same text, a third of the memory.
 */
function flatten(text: string): void {
  lastRead = text.charCodeAt(text.length - 1) | lastRead;
}

export type ResultBuilder = ReturnType<typeof resultFor>;

export function describe(excluded: Map<Exclusion, number>): string {
  return [...excluded].map(([why, n]) => `${n} ${why}`).join(', ');
}

export function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : toFixed3(x);
}

/**
 * `x.toFixed(3)`, the same string, without its slow general path (a round's reasons format tens of
 * thousands of loads): x × 1000 is rounded directly unless it lies too near a rounding tie for a double
 * to decide (or x is too large for the product to be that exact), where toFixed itself answers.
 */
export function toFixed3(x: number): string {
  const a = Math.abs(x);
  // Below 1e6, a × 1000 < 1e9 is within 1e-7 of its exact value: only a fraction within 1e-6 of one
  // half could round differently.
  if (!(a < 1e6)) return x.toFixed(3);
  const scaled = a * 1000;
  const n = Math.round(scaled);
  if (Math.abs(scaled - Math.floor(scaled) - 0.5) < 1e-6) return x.toFixed(3);
  const whole = Math.floor(n / 1000);
  const decimals = decimalsOf(n - whole * 1000);
  return x < 0 ? `-${whole}${decimals}` : `${whole}${decimals}`;
}

/** '.000' … '.999', made on first use: a load's text is then its whole part joined to one of them. */
let decimalTexts: string[] | undefined;

function decimalsOf(frac: number): string {
  decimalTexts ??= Array.from({ length: 1000 }, (_, k) => `.${String(k).padStart(3, '0')}`);
  return decimalTexts[frac] as string;
}

/**
 * A reason's text from a template, used as its tag (text`…`): the same text as the template literal
 * (each value turned to a string as it would), made flat in one piece. A template literal joins its
 * pieces one by one, each join a new string (about 1 KB for a moved pair's reason, which `flatten`
 * then copies again); joining them all at once makes just the text.
 */
export function text(strings: TemplateStringsArray, ...values: unknown[]): string {
  const parts = textParts;
  parts[0] = strings[0] as string;
  for (let k = 0; k < values.length; k++) {
    parts[2 * k + 1] = String(values[k]);
    parts[2 * k + 2] = strings[k + 1] as string;
  }
  endAt(parts, 2 * values.length + 1);
  return parts.join('');
}

/** The pieces `text` joins, one list for every call (a call fills and joins it before it returns). */
const textParts: string[] = [];
