// Two peer baselines modelled on the documented behaviour of tools operators use, run on the same
// placement state and loads as greedy (see greedy.ts). Both evacuate draining nodes like greedy.
import { cannotEnter, cannotLeave, type TakerState } from '../domain/constraints.ts';
import { vmLoad } from '../domain/load.ts';
import type { NodeInfo, VmInfo } from '../domain/types.ts';
import { type GreedyMove, type GreedyState, mover } from './greedy.ts';

/**
 * Kubernetes descheduler `LowNodeUtilization` with `useDeviationThresholds`: a node whose
 * utilisation (load / capacity, in percent) is more than `thresholds` below the mean is
 * under-utilised, more than `targetThresholds` above it over-utilised. Pods (VMs) are evicted from
 * the over-utilised nodes, largest first, while the node stays above mean + targetThresholds and
 * some under-utilised node has room below mean + targetThresholds; the scheduler places each on the
 * least utilised of those (LeastAllocated scoring).
 */
export const LNU_DEFAULTS = { thresholds: 10, targetThresholds: 10 };

/** ProxLB: when max − min utilisation (percent) exceeds `balanciness`, move one guest per run from the most to the least loaded node. */
export const PROXLB_DEFAULTS = { balanciness: 10 };

const utilisation = (state: GreedyState, loads: Float64Array, i: number) =>
  (100 * (loads[i] ?? 0)) / ((state.nodes[i] as NodeInfo).capacity || 1);

/** The least utilised of `candidates` that `takes` admits (the first of equals); -1 if none. */
function leastUtilised(
  state: GreedyState,
  loads: Float64Array,
  candidates: Iterable<number>,
  takes: (t: number) => boolean,
): number {
  let best = -1;
  for (const t of candidates) {
    if (!takes(t)) continue;
    if (best < 0 || utilisation(state, loads, t) < utilisation(state, loads, best)) best = t;
  }
  return best;
}

/** Draining nodes first: each VM to the least utilised node that may take it. */
function evacuate(state: GreedyState, loads: Float64Array, budget: number, now: number, move: Move) {
  let made = 0;
  for (let s = 0; s < state.nodes.length && made < budget; s++) {
    if (!state.nodes[s]?.draining) continue;
    for (const vm of [...(state.vmsOf[s] ?? [])]) {
      if (made >= budget) break;
      if (cannotLeave(vm, now)) continue;
      const best = leastUtilised(
        state,
        loads,
        state.nodes.keys(),
        (t) => !state.nodes[t]?.draining && !cannotEnter(vm, state.takers[t] as TakerState),
      );
      if (best >= 0) {
        move(vm, s, best);
        made++;
      }
    }
  }
  return made;
}

type Move = ReturnType<typeof mover>;

/**
 * A peer's round: draining nodes are evacuated first, then `pass` makes its own moves within the
 * budget left. The round returns the number of moves.
 */
function peerRound<O>(
  defaults: O,
  pass: (
    state: GreedyState,
    loads: Float64Array,
    budget: number,
    now: number,
    move: Move,
    options: O,
  ) => number,
) {
  return (
    state: GreedyState,
    loads: Float64Array,
    budget: number,
    now: number,
    onMove: (m: GreedyMove) => void,
    options: O = defaults,
  ): number => {
    const move = mover(state, loads, onMove);
    const made = evacuate(state, loads, budget, now, move);
    return made + pass(state, loads, budget - made, now, move, options);
  };
}

/** One descheduler pass (LowNodeUtilization, deviation thresholds). */
export const lowNodeUtilizationRound = peerRound(LNU_DEFAULTS, (state, loads, budget, now, move, options) => {
  let made = 0;
  const live = state.nodes.map((_, i) => i).filter((i) => !state.nodes[i]?.draining);
  if (live.length === 0) return made;
  const mean = live.reduce((s, i) => s + utilisation(state, loads, i), 0) / live.length;
  const low = mean - options.thresholds;
  const high = mean + options.targetThresholds;
  const under = live.filter((i) => utilisation(state, loads, i) < low);
  const over = live
    .filter((i) => utilisation(state, loads, i) > high)
    .sort((a, b) => utilisation(state, loads, b) - utilisation(state, loads, a));
  if (under.length === 0) return made;
  for (const s of over) {
    const w = (state.nodes[s] as NodeInfo).weights;
    const vms = [...(state.vmsOf[s] ?? [])].sort((a, b) => vmLoad(b.factors, w) - vmLoad(a.factors, w));
    for (const vm of vms) {
      if (made >= budget || utilisation(state, loads, s) <= high) break;
      if (cannotLeave(vm, now)) continue;
      const best = leastUtilised(state, loads, under, (t) => {
        const target = state.nodes[t] as NodeInfo;
        const after = (100 * ((loads[t] ?? 0) + vmLoad(vm.factors, target.weights))) / (target.capacity || 1);
        return after <= high && !cannotEnter(vm, state.takers[t] as TakerState);
      });
      if (best < 0) continue;
      move(vm, s, best);
      made++;
    }
  }
  return made;
});

/** One ProxLB run: at most one guest moves, from the most to the least utilised node. */
export const proxlbRound = peerRound(PROXLB_DEFAULTS, (state, loads, budget, now, move, options) => {
  if (budget <= 0) return 0;
  let hi = -1;
  let lo = -1;
  for (let i = 0; i < state.nodes.length; i++) {
    if (state.nodes[i]?.draining) continue;
    const u = utilisation(state, loads, i);
    if (hi < 0 || u > utilisation(state, loads, hi)) hi = i;
    if (lo < 0 || u < utilisation(state, loads, lo)) lo = i;
  }
  if (hi < 0 || hi === lo) return 0;
  if (utilisation(state, loads, hi) - utilisation(state, loads, lo) <= options.balanciness) return 0;
  // The guest whose move leaves the two nodes closest, without making the target the busier one.
  const source = state.nodes[hi] as NodeInfo;
  const target = state.nodes[lo] as NodeInfo;
  let best: VmInfo | undefined;
  let bestGap = Math.abs((loads[hi] ?? 0) - (loads[lo] ?? 0));
  for (const vm of state.vmsOf[hi] ?? []) {
    if (cannotLeave(vm, now) || cannotEnter(vm, state.takers[lo] as TakerState)) continue;
    const s = (loads[hi] ?? 0) - vmLoad(vm.factors, source.weights);
    const t = (loads[lo] ?? 0) + vmLoad(vm.factors, target.weights);
    if (t > (loads[hi] ?? 0)) continue;
    if (Math.abs(s - t) < bestGap) {
      best = vm;
      bestGap = Math.abs(s - t);
    }
  }
  if (!best) return 0;
  move(best, hi, lo);
  return 1;
});
