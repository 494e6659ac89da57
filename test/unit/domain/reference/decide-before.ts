// A frozen copy of decideRound as it was before it was split into steps and sped up (issues 16, 17):
// the equivalence test checks that today's decideRound still makes exactly these decisions. Policy
// changes made since (issue 15: two-for-one swaps, the retry of stalled givers, the tolerance) are
// carried into it; rounds with a spill or a mirror are newer than it and left out of the comparison.
// One balancing round (Figs. 2 and 3 for every pair at once): pair the nodes, test each pair,
// select the VMs to move under the constraints and limits, and say why for every pair.
import {
  type Exclusion,
  excludedBy,
  mayEnter,
  mayLeave,
  type TakerState,
} from '../../../../shared/domain/constraints.ts';
import { exceeds } from '../../../../shared/domain/exceeds.ts';
import { TOLERANCE_BAND, TOLERANCE_MIN_VMS } from '../../../../shared/domain/exchange.ts';
import { vmLoad } from '../../../../shared/domain/load.ts';
import { type Pair, type PairingNode, pairNodes } from '../../../../shared/domain/pairing.ts';
import { shuffled } from '../../../../shared/domain/rng.ts';
import {
  type Candidate,
  type ExchangeState,
  selectSwap,
  selectVm,
} from '../../../../shared/domain/selection.ts';
import { imbalance } from '../../../../shared/domain/stats.ts';
import { chooseTrigger, OVERLOAD_FACTOR, type TriggerChoice } from '../../../../shared/domain/trigger.ts';
import type {
  BalancingConfig,
  Move,
  NodeInfo,
  PairDecision,
  Reason,
  Rng,
  RoundDecision,
  RoundInput,
  VmInfo,
} from '../../../../shared/domain/types.ts';

/** How far past the mean (as a fraction of the giver's excess) a mean-aimed exchange may fill the taker. */
const MEAN_OVERSHOOT = 0.25;

/** Swaps are for givers in this upper share of the excess of the most loaded node over the mean. */
const SWAP_SHARE = 0.5;

/** Mutable bookkeeping for one round; per-node figures live in arrays indexed like `input.nodes`. */
interface RoundState {
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
}

const at = (state: RoundState, id: string) => state.index.get(id) as number;
const nodeOf = (state: RoundState, id: string) => state.input.nodes[at(state, id)] as NodeInfo;
const loadOf = (state: RoundState, id: string) => state.loads[at(state, id)] ?? 0;
const budgetOf = (state: RoundState, id: string) => state.budget[at(state, id)] ?? 0;

/** The VMs on a node (as the round started), gathered on first use. */
function vmsOf(state: RoundState, id: string): VmInfo[] {
  const i = at(state, id);
  let list = state.vmLists[i];
  if (!list) {
    list = [];
    for (let k = state.start[i] ?? 0; k < (state.start[i + 1] ?? 0); k++) {
      list.push(state.input.vms[state.order[k] ?? 0] as VmInfo);
    }
    state.vmLists[i] = list;
  }
  return list;
}

/** Decide a whole round: node loads, disjoint pairs, the exceeds test, selection under constraints, reasons. */
export function decideRoundBefore(input: RoundInput, config: BalancingConfig, rng: Rng): RoundDecision {
  const state = prepare(input, config);
  const skipped: RoundDecision['skipped'] = [];
  const pairable: PairingNode[] = [];
  input.nodes.forEach((node, i) => {
    if ((state.budget[i] ?? 0) <= 0) {
      const inFlight = input.inFlight?.[node.id] ?? 0;
      skipped.push({ node: node.id, reason: `limit: ${inFlight} migration(s) already in flight` });
      return;
    }
    // A draining node takes no pairing slot: the others pair as if it were absent, and it gives below.
    if (node.draining) return;
    pairable.push({ id: node.id, load: state.loads[i] ?? 0, capacity: node.capacity });
  });
  const before = imbalance(countedLoads(state));
  const pairs =
    config.pairing === 'spread'
      ? pairBySpreadBefore(pairable, rng)
      : pairNodes(pairable, config, input.round, rng);
  // The widest gaps go first, so the cluster-wide migration limit is spent where it matters most.
  const gaps = new Map(
    pairs.map((p) => [p, Math.abs(loadOf(state, p.requester) - loadOf(state, p.selected))]),
  );
  pairs.sort((a, b) => (gaps.get(b) ?? 0) - (gaps.get(a) ?? 0));
  const decisions = retryStalledBefore(
    state,
    pairs.map((p) => decidePair(state, p.requester, p.selected)),
  );
  decisions.push(...drainAll(state, skipped));
  const moves = decisions.flatMap((d) => d.moves);
  const after = imbalance(countedLoads(state));
  const expected: Record<string, number> = {};
  input.nodes.forEach((node, i) => {
    expected[node.id] = state.loads[i] ?? 0;
  });
  return { pairs: decisions, moves, skipped, before, after, expected, trigger: state.trigger };
}

/**
 * Each draining node gives to the best receivers: the least loaded non-draining nodes (after the
 * pairs' moves) that still have migration budget, one exchange each, until it is empty or stuck.
 */
function drainAll(state: RoundState, skipped: RoundDecision['skipped']): PairDecision[] {
  const out: PairDecision[] = [];
  const { nodes } = state.input;
  for (const giver of nodes) {
    if (!giver.draining || budgetOf(state, giver.id) <= 0 || vmsOf(state, giver.id).length === 0) continue;
    const receivers = nodes
      .filter((n) => !n.draining && budgetOf(state, n.id) > 0)
      .sort((a, b) => loadOf(state, a.id) - loadOf(state, b.id));
    if (receivers.length === 0) {
      skipped.push({ node: giver.id, reason: 'draining, but no node in the round may receive its VMs' });
      continue;
    }
    let left = vmsOf(state, giver.id).length;
    for (const taker of receivers) {
      if (left <= 0 || budgetOf(state, giver.id) <= 0 || state.clusterBudget <= 0) break;
      const decision = drain(state, giver, taker, resultFor(state, giver.id, taker.id));
      left -= decision.moves.length;
      // Keep the exchanges that moved something; one line for a drain that could not start.
      if (decision.moves.length > 0 || out.every((d) => d.requester !== giver.id)) out.push(decision);
      if (decision.moves.length === 0 && decision.reason.code !== 'draining') break;
    }
  }
  return out;
}

/** The loads imbalance figures count: draining nodes are on their way out and are left out. */
function countedLoads(state: RoundState): number[] {
  const out: number[] = [];
  state.input.nodes.forEach((node, i) => {
    if (!node.draining) out.push(state.loads[i] ?? 0);
  });
  return out;
}

function prepare(input: RoundInput, config: BalancingConfig): RoundState {
  const n = input.nodes.length;
  const index = new Map<string, number>();
  for (const [i, node] of input.nodes.entries()) index.set(node.id, i);
  // One pass over the VMs: node of each VM, loads under each node's weights, counts per node.
  const vmNode = new Int32Array(input.vms.length);
  const start = new Int32Array(n + 1);
  const loads = new Float64Array(n);
  for (let v = 0; v < input.vms.length; v++) {
    const vm = input.vms[v] as VmInfo;
    const i = index.get(vm.node) ?? -1;
    vmNode[v] = i;
    if (i < 0) continue;
    start[i + 1] = (start[i + 1] ?? 0) + 1;
    loads[i] = (loads[i] ?? 0) + vmLoad(vm.factors, (input.nodes[i] as NodeInfo).weights);
  }
  for (let i = 0; i < n; i++) start[i + 1] = (start[i + 1] ?? 0) + (start[i] ?? 0);
  const order = new Int32Array(start[n] ?? 0);
  const fill = start.slice(0, n);
  for (let v = 0; v < input.vms.length; v++) {
    const i = vmNode[v] ?? -1;
    if (i < 0) continue;
    order[fill[i] ?? 0] = v;
    fill[i] = (fill[i] ?? 0) + 1;
  }
  let total = 0;
  let receiving = 0;
  const inFlight = input.inFlight ?? {};
  let clusterInFlight = 0;
  const budget = new Float64Array(n);
  input.nodes.forEach((node, i) => {
    if (node.loadOverride !== undefined) loads[i] = node.loadOverride;
    total += loads[i] ?? 0;
    if (!node.draining) receiving++;
    const f = inFlight[node.id] ?? 0;
    clusterInFlight += f;
    budget[i] = config.maxMigrationsPerNode - f;
  });
  const mean = receiving > 0 ? total / receiving : 0;
  const counted = new Map<string, number>();
  input.nodes.forEach((node, i) => {
    if (!node.draining) counted.set(node.id, loads[i] ?? 0);
  });
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
    swapFloor: mean + SWAP_SHARE * (maxOf(counted.values(), mean) - mean),
  };
}

/** A builder of the pair's decision: loads as the exchange starts, predicted loads when it is made. */
function resultFor(state: RoundState, requester: string, selected: string) {
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

function decidePair(state: RoundState, requester: string, selected: string): PairDecision {
  const { config } = state;
  const loads = { requester: loadOf(state, requester), selected: loadOf(state, selected) };
  const result = resultFor(state, requester, selected);
  const rNode = nodeOf(state, requester);
  const sNode = nodeOf(state, selected);
  if (rNode.draining && sNode.draining) {
    return result({ code: 'draining', detail: `${requester} and ${selected} are both draining` });
  }
  if (rNode.draining || sNode.draining) {
    const [giver, taker] = rNode.draining ? [rNode, sNode] : [sNode, rNode];
    return drain(state, giver, taker, result);
  }
  let giver: NodeInfo;
  let taker: NodeInfo;
  let pulled = false;
  if (exceeds(loads.requester, loads.selected, config)) {
    [giver, taker] = [rNode, sNode];
  } else if (exceeds(loads.selected, loads.requester, config)) {
    if (config.direction === 'push-only') {
      return result({
        code: 'push-only',
        detail: `${selected} (${fmt(loads.selected)}) exceeds ${requester} (${fmt(loads.requester)}) but only the requester may give`,
      });
    }
    [giver, taker] = [sNode, rNode];
    pulled = true;
  } else if (loads.requester === loads.selected) {
    return result({
      code: 'balanced',
      detail: `${requester} and ${selected} carry the same load (${fmt(loads.requester)})`,
    });
  } else {
    return result({
      code: 'below-threshold',
      detail: `${fmt(loads.requester)} vs ${fmt(loads.selected)}: the difference is within factor ${config.thresholdFactor} / margin ${config.margin}`,
    });
  }
  const g = loadOf(state, giver.id);
  const t = loadOf(state, taker.id);
  if (state.trigger.trigger === 'headroom' && g <= config.highThreshold * giver.capacity) {
    return result({
      code: 'below-threshold',
      detail: `${giver.id} (${fmt(g)}) has headroom below ${config.highThreshold} of its capacity ${fmt(giver.capacity)}`,
    });
  }
  if (state.trigger.trigger === 'overload' && g <= OVERLOAD_FACTOR * giver.capacity) {
    return result({
      code: 'below-threshold',
      detail: `${giver.id} (${fmt(g)}) is not overloaded (capacity ${fmt(giver.capacity)}) and the loads are noisy (spread ${fmt(state.trigger.spread)}, noise ${fmt(state.trigger.noise ?? 0)})`,
    });
  }
  const transfer = desiredTransfer(state, giver, taker, g, t);
  if (transfer <= 0) {
    return result({
      code: 'balanced',
      detail: `${giver.id} (${fmt(g)}) and ${taker.id} (${fmt(t)}) need nothing to reach the aim (mean ${fmt(state.mean)})`,
    });
  }
  if (state.clusterBudget <= 0) {
    return result({
      code: 'limit',
      detail: `cluster limit of ${config.maxMigrationsPerCluster} migrations reached`,
    });
  }
  const { candidates, excluded, total } = candidatesFor(state, giver, taker);
  if (total === 0) return result({ code: 'no-candidate', detail: `${giver.id} has no VMs to give` });
  if (candidates.length === 0) {
    return result({
      code: 'constraint',
      detail: `no VM of ${giver.id} may move to ${taker.id}: ${describe(excluded)}`,
    });
  }
  const exchange: ExchangeState = {
    giverLoad: g,
    takerLoad: t,
    aimGap: g - t - 2 * transfer,
    tolerance: candidates.length >= TOLERANCE_MIN_VMS ? toleranceBefore(state) : 0,
  };
  const maxMoves = config.multiVm ? config.maxMovesPerExchange : 1;
  const moves: Move[] = [];
  const pool = candidates;
  let stoppedByLimit = false;
  while (moves.length < maxMoves) {
    if (!hasBudget(state, giver.id, taker.id)) {
      stoppedByLimit = true;
      break;
    }
    let pick = selectVm(pool, exchange, config.selection);
    if (!pick && moves.length === 0 && (config.aim ?? 'pair') === 'mean' && g > state.mean) {
      // Every VM is too large to stop the taker at the mean: let the taker pass it, so that a giver
      // above the mean is never stuck (its VMs would otherwise stay put for ever).
      const giverSide = Math.min((g - t) / 2, g - state.mean);
      exchange.aimGap = g - t - 2 * giverSide;
      pick = selectVm(pool, exchange, config.selection);
    }
    if (!pick) break;
    moves.push(applyMove(state, pick, giver, taker));
    exchange.giverLoad -= pick.loadOnSource;
    exchange.takerLoad += pick.loadOnTarget;
    const takerState = takerOf(state, taker.id);
    // The taker's memory and groups changed: keep the candidates that still fit (in place).
    let kept = 0;
    for (const c of pool) if (c !== pick && mayEnter(c.vm, takerState) === undefined) pool[kept++] = c;
    pool.length = kept;
    if (!exceeds(exchange.giverLoad, exchange.takerLoad, config)) break;
  }
  if (moves.length === 0) {
    if (stoppedByLimit)
      return result({ code: 'limit', detail: `migration limit reached for ${giver.id} or ${taker.id}` });
    const straddles = g >= state.swapFloor && t < state.mean;
    const swap = config.multiVm && straddles ? trySwap(state, giver, taker, candidates, exchange) : undefined;
    if (swap) {
      const list = (ms: Move[]) => ms.map((m) => `${m.vm} (${fmt(m.loadOnSource)})`).join(' and ');
      return result(
        {
          code: 'moved',
          detail: `no single VM helps, so ${giver.id} and ${taker.id} swapped ${list(swap.filter((m) => m.from === giver.id))} for ${list(swap.filter((m) => m.from === taker.id))}: ${fmt(g)}/${fmt(t)} → ${fmt(loadOf(state, giver.id))}/${fmt(loadOf(state, taker.id))}`,
        },
        swap,
      );
    }
    return result({
      code: 'no-gain',
      detail: `none of ${candidates.length} movable VM(s) of ${giver.id} brings ${fmt(g)} vs ${fmt(t)} closer without raising the pair's maximum`,
    });
  }
  const moved = moves.reduce((sum, m) => sum + m.loadOnSource, 0);
  return result(
    {
      code: 'moved',
      detail: `${giver.id} ${pulled ? 'gave (pulled by the less loaded side)' : 'gave'} ${moves.length} VM(s), load ${fmt(moved)}, to ${taker.id}: ${fmt(g)}/${fmt(t)} → ${fmt(exchange.giverLoad)}/${fmt(exchange.takerLoad)}`,
    },
    moves,
  );
}

/**
 * Swaps follow today's search (two for one since issue 15's brute-force work), so that this copy pins
 * the round's bookkeeping, pairing and moves; `selectSwap` has its own tests.
 */
function trySwap(
  state: RoundState,
  giver: NodeInfo,
  taker: NodeInfo,
  gives: Candidate[],
  exchange: ExchangeState,
): Move[] | undefined {
  const room = Math.min(state.clusterBudget, budgetOf(state, giver.id), budgetOf(state, taker.id));
  if (room < 2) return;
  if (!sameWeights(giver.weights, taker.weights)) return;
  const back = candidatesFor(state, taker, giver).candidates;
  if (back.length === 0 || gives.length === 0) return;
  const swap = selectSwap(gives, back, exchange, room);
  if (!swap) return;
  const out = swap.give.map((c) => applyMove(state, c, giver, taker));
  const into = swap.take.map((c) => applyMove(state, c, taker, giver));
  return [...out, ...into];
}

/** How much load the giver should shed, in its own units: half the gap, capped by the aim and headroom. */
function desiredTransfer(state: RoundState, giver: NodeInfo, taker: NodeInfo, g: number, t: number): number {
  const { config, mean } = state;
  let transfer = (g - t) / 2;
  if ((config.aim ?? 'pair') === 'mean') {
    // A giver far above the mean may push its partner past the mean by a fraction of its own excess:
    // it meets one partner per round, and partners near the mean would otherwise take it slowly.
    transfer = Math.min(transfer, g - mean, Math.max(mean - t, (g - mean) * MEAN_OVERSHOOT));
  }
  if (state.trigger.trigger === 'headroom') {
    transfer = Math.min(transfer, config.highThreshold * taker.capacity - t);
  }
  if (state.trigger.trigger === 'overload') {
    // Shed just the overload: under noise, load moved below capacity is load moved for nothing.
    transfer = Math.min(transfer, taker.capacity - t, g - giver.capacity);
  }
  return transfer;
}

function candidatesFor(state: RoundState, giver: NodeInfo, taker: NodeInfo) {
  const takerState = takerOf(state, taker.id);
  const excluded = new Map<Exclusion, number>();
  const candidates: Candidate[] = [];
  const vms = vmsOf(state, giver.id);
  for (const vm of vms) {
    const why = excludedBy(vm, takerState, state.input.now);
    if (why) {
      excluded.set(why, (excluded.get(why) ?? 0) + 1);
      continue;
    }
    candidates.push({
      vm,
      loadOnSource: vmLoad(vm.factors, giver.weights),
      loadOnTarget: vmLoad(vm.factors, taker.weights),
    });
  }
  return { candidates, excluded, total: vms.length };
}

/** The node's memory in use and anti-affinity groups, computed on first use. */
function takerOf(state: RoundState, id: string): TakerState {
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

function hasBudget(state: RoundState, a: string, b: string): boolean {
  return state.clusterBudget > 0 && budgetOf(state, a) > 0 && budgetOf(state, b) > 0;
}

/** Record a move: update loads, the taker's memory and groups, and spend the budgets. */
function applyMove(state: RoundState, c: Candidate, giver: NodeInfo, taker: NodeInfo): Move {
  const g = at(state, giver.id);
  const t = at(state, taker.id);
  state.loads[g] = (state.loads[g] ?? 0) - c.loadOnSource;
  state.loads[t] = (state.loads[t] ?? 0) + c.loadOnTarget;
  const ts = takerOf(state, taker.id);
  ts.memUsedPages += c.vm.memPages;
  if (c.vm.group !== undefined) ts.groups.set(c.vm.group, (ts.groups.get(c.vm.group) ?? 0) + 1);
  const gs = takerOf(state, giver.id);
  gs.memUsedPages -= c.vm.memPages;
  if (c.vm.group !== undefined) gs.groups.set(c.vm.group, (gs.groups.get(c.vm.group) ?? 1) - 1);
  state.budget[g] = (state.budget[g] ?? 0) - 1;
  state.budget[t] = (state.budget[t] ?? 0) - 1;
  state.clusterBudget--;
  return {
    vm: c.vm.id,
    from: giver.id,
    to: taker.id,
    loadOnSource: c.loadOnSource,
    loadOnTarget: c.loadOnTarget,
  };
}

/**
 * A draining node gives every VM it may, largest first, regardless of the loads; it takes none. The
 * taker always gets one VM and then more only while it stays at or below the mean.
 */
function drain(
  state: RoundState,
  giver: NodeInfo,
  taker: NodeInfo,
  result: (reason: Reason, moves?: Move[]) => PairDecision,
): PairDecision {
  const all = vmsOf(state, giver.id);
  if (all.length === 0)
    return result({ code: 'draining', detail: `${giver.id} is draining and already empty` });
  const takerState = takerOf(state, taker.id);
  const excluded = new Map<Exclusion, number>();
  const candidates: Candidate[] = [];
  for (const vm of all) {
    const why = mayLeave(vm, state.input.now);
    if (why) {
      excluded.set(why, (excluded.get(why) ?? 0) + 1);
      continue;
    }
    candidates.push({
      vm,
      loadOnSource: vmLoad(vm.factors, giver.weights),
      loadOnTarget: vmLoad(vm.factors, taker.weights),
    });
  }
  candidates.sort((a, b) => b.loadOnSource - a.loadOnSource);
  const moves: Move[] = [];
  let limited = false;
  for (const c of candidates) {
    if (!hasBudget(state, giver.id, taker.id)) {
      limited = true;
      break;
    }
    const why = excludedBy(c.vm, takerState, state.input.now);
    if (why) {
      excluded.set(why, (excluded.get(why) ?? 0) + 1);
      continue;
    }
    // Spread the evacuation: after the first VM, fill the taker only up to the mean.
    const takerLoad = loadOf(state, taker.id);
    if (moves.length > 0 && takerLoad + c.loadOnTarget > state.mean) continue;
    moves.push(applyMove(state, c, giver, taker));
  }
  if (moves.length > 0) {
    const left = all.length - moves.length;
    return result(
      {
        code: 'moved',
        detail: `${giver.id} is draining: gave ${moves.length} VM(s) to ${taker.id}, ${left} left${limited ? ' (migration limit)' : ''}`,
      },
      moves,
    );
  }
  if (limited)
    return result({ code: 'limit', detail: `${giver.id} is draining but the migration limit is reached` });
  return result({
    code: 'draining',
    detail: `${giver.id} is draining but no VM may move to ${taker.id}: ${describe(excluded)}`,
  });
}

function describe(excluded: Map<Exclusion, number>): string {
  return [...excluded].map(([why, n]) => `${n} ${why}`).join(', ');
}

function sameWeights(a: NodeInfo['weights'], b: NodeInfo['weights']): boolean {
  return (
    a.cpu === b.cpu &&
    a.io === b.io &&
    a.mem === b.mem &&
    (a.paging ?? 0) === (b.paging ?? 0) &&
    (a.net ?? 0) === (b.net ?? 0)
  );
}

function maxOf(values: Iterable<number>, floor: number): number {
  let max = floor;
  for (const v of values) if (v > max) max = v;
  return max;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3);
}

function pairBySpreadBefore(nodes: readonly PairingNode[], rng: Rng): Pair[] {
  const key = (n: PairingNode) => (n.draining ? Number.POSITIVE_INFINITY : n.load);
  const order = shuffled(rng, nodes).sort((a, b) => key(b) - key(a) || 0);
  const pairs: Pair[] = [];
  for (let i = 0, j = order.length - 1; i < j; i++, j--) {
    pairs.push({ requester: (order[i] as PairingNode).id, selected: (order[j] as PairingNode).id });
  }
  return pairs;
}

/** Issue 15's retry of stalled givers, written against this copy's state (policy, not speed). */
function retryStalledBefore(state: RoundState, decisions: PairDecision[]): PairDecision[] {
  const stalled = decisions.filter((d) => d.reason.code === 'no-gain');
  if (stalled.length === 0) return decisions;
  const idle = new Set<string>();
  const partnerOf = new Map<string, string>();
  for (const d of decisions) {
    if (d.moves.length > 0) continue;
    idle.add(d.requester);
    idle.add(d.selected);
    partnerOf.set(d.requester, d.selected);
    partnerOf.set(d.selected, d.requester);
  }
  const byLoad = [...idle].sort((a, b) => loadOf(state, a) - loadOf(state, b));
  const retried: PairDecision[] = [];
  for (const d of stalled) {
    const giver = d.loads.requester >= d.loads.selected ? d.requester : d.selected;
    const first = giver === d.requester ? d.selected : d.requester;
    if (!idle.has(giver)) continue;
    let tried = 0;
    for (const partner of byLoad) {
      if (tried >= 3 || loadOf(state, partner) >= loadOf(state, giver)) break;
      if (partner === first || !idle.has(partner)) continue;
      tried++;
      const decision = decidePair(state, giver, partner);
      if (decision.moves.length === 0) continue;
      idle.delete(giver);
      idle.delete(partner);
      retried.push(decision);
      // The two nodes left without a partner pair up with each other.
      const orphan = partnerOf.get(partner);
      if (orphan !== undefined && orphan !== giver && idle.has(first) && idle.has(orphan)) {
        idle.delete(first);
        idle.delete(orphan);
        retried.push(decidePair(state, first, orphan));
      }
      break;
    }
  }
  if (retried.length === 0) return decisions;
  const busy = new Set(retried.flatMap((d) => [d.requester, d.selected]));
  return [...decisions.filter((d) => !busy.has(d.requester) && !busy.has(d.selected)), ...retried];
}

function toleranceBefore(state: RoundState): number {
  if ((state.config.aim ?? 'pair') !== 'mean' || state.trigger.trigger !== 'difference') return 0;
  const band = TOLERANCE_BAND * (state.config.thresholdFactor - 1) * state.mean;
  return Math.max(0, Math.min(band, 2 * state.trigger.spread * state.mean));
}
