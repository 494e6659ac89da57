// One balancing round (Figs. 2 and 3 for every pair at once): pair the nodes, test each pair,
// select the VMs to move under the constraints and limits, and say why for every pair.
import { drainAll } from './drain.ts';
import {
  byValue,
  closeExchange,
  countSides,
  openExchange,
  sideTolerance,
  stepExchange,
  toleranceOf,
} from './exchange.ts';
import { mirrorStalled } from './mirror.ts';
import { type PairingNode, pairNodes } from './pairing.ts';
import { countedLoads, loadOf, prepareRound, type RoundState, recycle } from './round-state.ts';
import { imbalance } from './stats.ts';
import type {
  BalancingConfig,
  Move,
  NodeInfo,
  PairDecision,
  Rng,
  RoundDecision,
  RoundInput,
} from './types.ts';

/** Decide a whole round: node loads, disjoint pairs, the exceeds test, selection under constraints, reasons. */
export function decideRound(input: RoundInput, config: BalancingConfig, rng: Rng): RoundDecision {
  const state = prepareRound(input, config);
  countSides(state);
  const skipped: RoundDecision['skipped'] = [];
  const before = imbalance(countedLoads(state));
  const pairs = pairNodes(pairableNodes(state, skipped), state.config, input.round, rng);
  const decided = spill(state, retryStalled(state, decidePairs(state, pairs)));
  const decisions = byValue(
    state,
    mirrorStalled(state, decided, (a, b) => decideExchange(state, a, b)),
  );
  decisions.push(...drainAll(state, skipped));
  const moves: Move[] = [];
  // By index: once a round, over thousands of decisions (see `drainAll`).
  for (let k = 0; k < decisions.length; k++) {
    const d = decisions[k] as PairDecision;
    for (let j = 0; j < d.moves.length; j++) moves.push(d.moves[j] as Move);
  }
  const after = imbalance(countedLoads(state));
  const decision = { pairs: decisions, moves, skipped, before, after, trigger: state.trigger };
  return withExpected(decision, input.nodes, state.loads);
}

/**
 * The decision with its `expected` loads built on first read: a balancer run never reads them (the
 * next round's input comes from the store). Made apart from decideRound, whose closures share a scope
 * holding the round state, so that the decision keeps the loads and the nodes, not the whole state.
 */
function withExpected(
  decision: Omit<RoundDecision, 'expected'>,
  nodes: readonly NodeInfo[],
  loads: Float64Array,
): RoundDecision {
  let expected: Record<string, number> | undefined | null = null;
  return {
    pairs: decision.pairs,
    moves: decision.moves,
    skipped: decision.skipped,
    before: decision.before,
    after: decision.after,
    get expected() {
      if (expected === null) expected = expectedLoads(nodes, loads);
      return expected;
    },
    set expected(given) {
      expected = given;
    },
    trigger: decision.trigger,
  };
}

/** Each node's load as the round leaves it, by id. */
function expectedLoads(nodes: readonly NodeInfo[], loads: Float64Array): Record<string, number> {
  const expected: Record<string, number> = {};
  for (let i = 0; i < nodes.length; i++) expected[(nodes[i] as NodeInfo).id] = loads[i] as number;
  return expected;
}

/** The nodes that take a pairing slot: not draining, and with migration budget left (else skipped). */
function pairableNodes(state: RoundState, skipped: RoundDecision['skipped']): PairingNode[] {
  const pairable: PairingNode[] = [];
  const { nodes, inFlight } = state.input;
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as NodeInfo;
    if ((state.budget[i] as number) <= 0) {
      skipped.push({
        node: node.id,
        reason: `limit: ${inFlight?.[node.id] ?? 0} migration(s) already in flight`,
      });
      continue;
    }
    // A draining node takes no pairing slot: the others pair as if it were absent, and it gives below.
    if (node.draining) continue;
    pairable.push({ id: node.id, load: state.loads[i] as number, capacity: node.capacity });
  }
  return pairable;
}

/** Every pair's exchange, the widest gaps first, so the cluster-wide limit is spent where it matters most. */
function decidePairs(state: RoundState, pairs: { requester: string; selected: string }[]): PairDecision[] {
  const gap = (p: { requester: string; selected: string }) =>
    Math.abs(loadOf(state, p.requester) - loadOf(state, p.selected));
  // The comparator answers -1/0/1 (the sign of b.gap − a.gap, 0 for NaN): small integers, where a
  // difference of loads is a number the sort boxes on every comparison.
  const ordered = pairs
    .map((p) => ({ p, gap: gap(p) }))
    .sort((a, b) => (b.gap > a.gap ? 1 : b.gap < a.gap ? -1 : 0));
  return ordered.map(({ p }) => decideExchange(state, p.requester, p.selected));
}

/** One pair's exchange from opening to its decision. */
function decideExchange(state: RoundState, requester: string, selected: string): PairDecision {
  const opened = openExchange(state, requester, selected);
  if ('reason' in opened) return opened;
  while (stepExchange(state, opened)) {}
  const decision = closeExchange(state, opened);
  // The decision holds moves, not candidates: the exchange's candidates may serve the next one.
  recycle(state, opened.candidates);
  return decision;
}

/** How many other partners a stalled giver tries before it waits for the next round. */
export const RETRY_PARTNERS = 3;

/**
 * A giver whose partner could take nothing that helps (`no-gain`) tries, most loaded first, up to
 * RETRY_PARTNERS other nodes that made no exchange this round, least loaded first: spread pairing
 * would otherwise pair the same two nodes round after round, stalled above the optimum. The first
 * exchange that moves replaces the idle decisions of both nodes, so the round's pairs stay disjoint.
 */
function retryStalled(state: RoundState, decisions: PairDecision[]): PairDecision[] {
  const stalled = decisions.filter((d) => d.reason.code === 'no-gain');
  if (stalled.length === 0) return decisions;
  const idle = new Set<string>();
  const partnerOf = new Map<string, string>();
  for (let k = 0; k < decisions.length; k++) {
    const d = decisions[k] as PairDecision;
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
      if (tried >= RETRY_PARTNERS || loadOf(state, partner) >= loadOf(state, giver)) break;
      if (partner === first || !idle.has(partner)) continue;
      tried++;
      const decision = decideExchange(state, giver, partner);
      if (decision.moves.length === 0) continue;
      idle.delete(giver);
      idle.delete(partner);
      retried.push(decision);
      // The two nodes left without a partner pair up with each other.
      const orphan = partnerOf.get(partner);
      if (orphan !== undefined && orphan !== giver && idle.has(first) && idle.has(orphan)) {
        idle.delete(first);
        idle.delete(orphan);
        retried.push(decideExchange(state, first, orphan));
      }
      break;
    }
  }
  if (retried.length === 0) return decisions;
  const busy = new Set(retried.flatMap((d) => [d.requester, d.selected]));
  const kept = decisions.filter((d) => !busy.has(d.requester) && !busy.has(d.selected));
  return [...kept, ...retried];
}

/** How many more partners a giver still above its side's tolerance meets after its exchange. */
export const SPILL_PARTNERS = 3;

/**
 * Under `difference` with a tolerance (see `toleranceOf`): a giver still more than its side's
 * tolerance (`sideTolerance`) above the mean after its exchange gives, most loaded first, to up to
 * SPILL_PARTNERS nodes below the mean that made no exchange this round, least loaded first, each a
 * pair exchange of its own under the same law, once the shard has an earlier round to measure noise
 * against. One partner per round would otherwise cap what a far outlier sheds at what one node near
 * the mean may take, and the round count would follow the outliers. No taker takes from two givers.
 */
function spill(state: RoundState, decisions: PairDecision[]): PairDecision[] {
  const tol = toleranceOf(state);
  // Not in a shard's first round: nothing says yet whether its imbalance is structural (it still is a
  // round later), and under noise a first-round spill only buys churn.
  if (tol <= 0 || state.trigger.noise === undefined) return decisions;
  // A giver within its side's tolerance is done (see `sideTolerance`).
  const giverTol = sideTolerance(state, true);
  const idle: string[] = [];
  const givers: string[] = [];
  for (const d of decisions) {
    if (d.moves.length === 0) idle.push(d.requester, d.selected);
    else givers.push((d.moves[0] as Move).from);
  }
  if (idle.length === 0 || givers.length === 0) return decisions;
  idle.sort((a, b) => loadOf(state, a) - loadOf(state, b));
  givers.sort((a, b) => loadOf(state, b) - loadOf(state, a));
  const taken = new Set<string>();
  const out = decisions.slice();
  state.gone = new Set(decisions.flatMap((d) => d.moves.map((m) => m.vm)));
  for (const giver of givers) {
    let tried = 0;
    for (const partner of idle) {
      if (tried >= SPILL_PARTNERS || loadOf(state, giver) <= state.mean + giverTol) break;
      if (taken.has(partner)) continue;
      if (loadOf(state, partner) >= state.mean) break;
      tried++;
      const d = decideExchange(state, giver, partner);
      if (d.moves.length === 0) continue;
      taken.add(partner);
      for (const m of d.moves) state.gone.add(m.vm);
      out.push(d);
    }
  }
  if (taken.size === 0) return out;
  // A partner's earlier (idle) pair is dropped; the nodes it leaves alone pair up with each other.
  const orphans: string[] = [];
  const kept = out.filter((d) => {
    if (d.moves.length > 0 || !(taken.has(d.requester) || taken.has(d.selected))) return true;
    for (const id of [d.requester, d.selected]) if (!taken.has(id)) orphans.push(id);
    return false;
  });
  for (let i = 0; i + 1 < orphans.length; i += 2) {
    kept.push(decideExchange(state, orphans[i] as string, orphans[i + 1] as string));
  }
  return kept;
}
