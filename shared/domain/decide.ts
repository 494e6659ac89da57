// One balancing round (Figs. 2 and 3 for every pair at once): pair the nodes, test each pair,
// select the VMs to move under the constraints and limits, and say why for every pair.
import { drainAll } from './drain.ts';
import { closeExchange, openExchange, stepExchange } from './exchange.ts';
import { type PairingNode, pairNodes } from './pairing.ts';
import { countedLoads, loadOf, prepareRound, type RoundState } from './round-state.ts';
import { imbalance } from './stats.ts';
import type { BalancingConfig, NodeInfo, PairDecision, Rng, RoundDecision, RoundInput } from './types.ts';

/** Decide a whole round: node loads, disjoint pairs, the exceeds test, selection under constraints, reasons. */
export function decideRound(input: RoundInput, config: BalancingConfig, rng: Rng): RoundDecision {
  const state = prepareRound(input, config);
  const skipped: RoundDecision['skipped'] = [];
  const before = imbalance(countedLoads(state));
  const pairs = pairNodes(pairableNodes(state, skipped), config, input.round, rng);
  const decisions = decidePairs(state, pairs);
  decisions.push(...drainAll(state, skipped));
  const moves = decisions.flatMap((d) => d.moves);
  const after = imbalance(countedLoads(state));
  const expected: Record<string, number> = {};
  for (let i = 0; i < input.nodes.length; i++)
    expected[(input.nodes[i] as NodeInfo).id] = state.loads[i] as number;
  return { pairs: decisions, moves, skipped, before, after, expected, trigger: state.trigger };
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
  const ordered = pairs.map((p) => ({ p, gap: gap(p) })).sort((a, b) => b.gap - a.gap);
  return ordered.map(({ p }) => {
    const opened = openExchange(state, p.requester, p.selected);
    if ('reason' in opened) return opened;
    while (stepExchange(state, opened)) {}
    return closeExchange(state, opened);
  });
}
