// Block 52: which node each requester exchanges load information with. A round's pairs are disjoint.
import { shuffled } from './rng.ts';
import type { BalancingConfig, Rng } from './types.ts';

/** What pairing needs to know about a node. */
export interface PairingNode {
  id: string;
  load: number;
  capacity: number;
  /** Draining nodes give everything away: spread pairing puts them first, with the least loaded. */
  draining?: boolean;
}

/** A requesting node (block 50) and the node it selected (block 52). */
export interface Pair {
  requester: string;
  selected: string;
}

type PairingConfig = Pick<BalancingConfig, 'pairing' | 'withRandom' | 'highThreshold' | 'lowThreshold'>;

/** Disjoint pairs for one round under the configured policy; no node appears twice. */
export function pairNodes(
  nodes: readonly PairingNode[],
  config: PairingConfig,
  round: number,
  rng: Rng,
): Pair[] {
  switch (config.pairing) {
    case 'random':
      return pairRandomly(shuffled(rng, nodes));
    case 'round-robin':
      return pairRoundRobin(nodes, round);
    case 'spread':
      return pairBySpread(nodes, rng);
    case 'sender':
    case 'receiver':
    case 'symmetric':
      return pairByThreshold(nodes, config, rng);
  }
}

function pairRandomly(order: readonly PairingNode[]): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i + 1 < order.length; i += 2) {
    pairs.push({ requester: (order[i] as PairingNode).id, selected: (order[i + 1] as PairingNode).id });
  }
  return pairs;
}

/**
 * A round-robin list (the circle method): nodes in id order, the first fixed, the rest rotated by the
 * round number, so over n−1 rounds every node meets every other exactly once.
 */
function pairRoundRobin(nodes: readonly PairingNode[], round: number): Pair[] {
  const ids = nodes.map((n) => n.id).sort();
  const list: (string | null)[] = ids.length % 2 === 0 ? ids : [...ids, null];
  const m = list.length;
  if (m < 2) return [];
  const rest = list.slice(1);
  const shift = ((round % (m - 1)) + (m - 1)) % (m - 1);
  const arranged = [list[0] ?? null, ...rest.slice(shift), ...rest.slice(0, shift)];
  const pairs: Pair[] = [];
  for (let i = 0; i < m / 2; i++) {
    const a = arranged[i];
    const b = arranged[m - 1 - i];
    if (a && b) pairs.push({ requester: a, selected: b });
  }
  return pairs;
}

/**
 * Spread pairing uses what the run knows about its shard: the most loaded node pairs with the least
 * loaded, the second with the second least, and so on (ties broken at random).
 */
function pairBySpread(nodes: readonly PairingNode[], rng: Rng): Pair[] {
  const shuffledNodes = shuffled(rng, nodes);
  // Sort positions by a precomputed key (the same stable order as sorting the nodes themselves).
  const keys = shuffledNodes.map((n) => (n.draining ? Number.POSITIVE_INFINITY : n.load));
  // The comparator answers -1/0/1 (the sign of keys[b] − keys[a], 0 for NaN): small integers, not boxed.
  const positions = keys
    .map((_, i) => i)
    .sort((a, b) => {
      const ka = keys[a] as number;
      const kb = keys[b] as number;
      return kb > ka ? 1 : kb < ka ? -1 : 0;
    });
  const order = positions.map((i) => shuffledNodes[i] as PairingNode);
  const pairs: Pair[] = [];
  for (let i = 0, j = order.length - 1; i < j; i++, j--) {
    pairs.push({ requester: (order[i] as PairingNode).id, selected: (order[j] as PairingNode).id });
  }
  return pairs;
}

/**
 * Sender-initiated (nodes above the high threshold request), receiver-initiated (nodes below the low
 * threshold request) and symmetric (both). Requesters pick random partners from the other nodes,
 * senders preferring receivers; with `withRandom` the nodes left over are paired at random.
 */
function pairByThreshold(nodes: readonly PairingNode[], config: PairingConfig, rng: Rng): Pair[] {
  const order = shuffled(rng, nodes);
  const isSender = (n: PairingNode) => n.load > config.highThreshold * n.capacity;
  const isReceiver = (n: PairingNode) => n.load < config.lowThreshold * n.capacity;
  const senders = config.pairing === 'receiver' ? [] : order.filter(isSender);
  const receivers = config.pairing === 'sender' ? [] : order.filter((n) => isReceiver(n) && !isSender(n));
  const requesters = new Set([...senders, ...receivers].map((n) => n.id));
  const middle = order.filter((n) => !requesters.has(n.id));
  const pairs: Pair[] = [];
  const paired = new Set<string>();
  const take = (pool: PairingNode[]) => {
    while (pool.length > 0) {
      const n = pool.pop() as PairingNode;
      if (!paired.has(n.id)) return n;
    }
    return undefined;
  };
  const pairUp = (requester: PairingNode, partner: PairingNode | undefined) => {
    if (!partner) return;
    paired.add(requester.id);
    paired.add(partner.id);
    pairs.push({ requester: requester.id, selected: partner.id });
  };
  // Senders first take receivers (the symmetric case), then nodes in the middle.
  const receiverPool = receivers.slice();
  for (const s of senders) pairUp(s, take(receiverPool) ?? take(middle));
  for (const r of receivers) if (!paired.has(r.id)) pairUp(r, take(middle));
  if (config.withRandom) {
    pairs.push(...pairRandomly(order.filter((n) => !paired.has(n.id))));
  }
  return pairs;
}
