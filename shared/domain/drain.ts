// Draining nodes give every VM they may, whatever the loads, and take none.
import { cannotLeave, type Exclusion, excludedBy } from './constraints.ts';
import {
  applyMove,
  budgetOf,
  candidateOf,
  describe,
  hasBudget,
  loadOf,
  type ResultBuilder,
  type RoundState,
  resultFor,
  takerOf,
  vmsOf,
} from './round-state.ts';
import type { Candidate } from './selection.ts';
import type { Move, NodeInfo, PairDecision, RoundDecision } from './types.ts';

/**
 * Each draining node gives to the best receivers: the least loaded non-draining nodes (after the
 * pairs' moves) that still have migration budget, one exchange each, until it is empty or stuck.
 */
export function drainAll(state: RoundState, skipped: RoundDecision['skipped']): PairDecision[] {
  const out: PairDecision[] = [];
  const { nodes } = state.input;
  // By index: this loop runs once a round, over every node, before V8 would optimise away for-of's
  // per-node iterator results.
  for (let i = 0; i < nodes.length; i++) {
    const giver = nodes[i] as NodeInfo;
    if (!giver.draining || budgetOf(state, giver.id) <= 0 || vmsOf(state, giver.id).length === 0) continue;
    const receivers = nodes
      .filter((n) => !n.draining && budgetOf(state, n.id) > 0)
      .sort((a, b) => loadOf(state, a.id) - loadOf(state, b.id));
    if (receivers.length === 0) {
      skipped.push({ node: giver.id, reason: 'draining, but no node in the round may receive its VMs' });
      continue;
    }
    let left = vmsOf(state, giver.id).length;
    // vmsOf lists the node's VMs as the round started: those given to an earlier taker are gone.
    const gone = new Set<string>();
    for (const taker of receivers) {
      if (left <= 0 || budgetOf(state, giver.id) <= 0 || state.clusterBudget <= 0) break;
      const decision = drain(state, giver, taker, resultFor(state, giver.id, taker.id), gone);
      left -= decision.moves.length;
      for (const m of decision.moves) gone.add(m.vm);
      // Keep the exchanges that moved something; one line for a drain that could not start.
      if (decision.moves.length > 0 || out.every((d) => d.requester !== giver.id)) out.push(decision);
    }
  }
  return out;
}

/**
 * A draining node gives every VM it may, largest first, regardless of the loads; it takes none. The
 * taker always gets one VM and then more only while it stays at or below the mean.
 */
function drain(
  state: RoundState,
  giver: NodeInfo,
  taker: NodeInfo,
  result: ResultBuilder,
  gone: ReadonlySet<string>,
): PairDecision {
  // drainAll calls with VMs left (`left`).
  const all = vmsOf(state, giver.id).filter((vm) => !gone.has(vm.id));
  const takerState = takerOf(state, taker.id);
  const excluded = new Map<Exclusion, number>();
  // VMs that may not leave are no candidates: counted first, they never meet the limit below.
  const candidates: Candidate[] = [];
  for (const vm of all) {
    const why = cannotLeave(vm, state.input.now);
    if (why) {
      excluded.set(why, (excluded.get(why) ?? 0) + 1);
      continue;
    }
    candidates.push(candidateOf(vm, giver, taker));
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
  // No move and no budget cannot happen: drainAll stops before a giver or the cluster runs out, and
  // each taker has budget as its turn comes.
  return result({
    code: 'draining',
    detail: `${giver.id} is draining but no VM may move to ${taker.id}: ${describe(excluded)}`,
  });
}
