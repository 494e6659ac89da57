import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { type PairingNode, pairNodes } from '../../../shared/domain/pairing.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { BalancingConfig, PairingPolicy } from '../../../shared/domain/types.ts';

const nodes = (loads: number[]): PairingNode[] =>
  loads.map((load, i) => ({ id: `n${i}`, load, capacity: 100 }));
const config = (pairing: PairingPolicy, over: Partial<BalancingConfig> = {}) => ({
  ...DEFAULT_BALANCING_CONFIG,
  pairing,
  ...over,
});

/** The pairs of round 0, seed 1, of nodes with these loads (capacity 100) under `pairing`. */
const firstRoundPairs = (loads: number[], pairing: PairingPolicy, over: Partial<BalancingConfig>) =>
  pairNodes(nodes(loads), config(pairing, over), 0, createRng(1));

describe('pairNodes', () => {
  it('pairs every node at most once under every policy', () => {
    const cluster = nodes([95, 90, 85, 50, 50, 50, 20, 10, 5, 60, 70]);
    for (const policy of ['random', 'round-robin', 'sender', 'receiver', 'symmetric', 'spread'] as const) {
      for (const withRandom of [true, false]) {
        const pairs = pairNodes(cluster, config(policy, { withRandom }), 3, createRng(9));
        const ids = pairs.flatMap((p) => [p.requester, p.selected]);
        expect(new Set(ids).size).toBe(ids.length);
      }
    }
  });

  it('pairs all but one node at random, differently for different seeds', () => {
    const cluster = nodes(Array.from({ length: 21 }, (_, i) => i));
    const a = pairNodes(cluster, config('random'), 0, createRng(1));
    const b = pairNodes(cluster, config('random'), 0, createRng(2));
    expect(a).toHaveLength(10);
    expect(a).not.toEqual(b);
  });

  it('meets every other node exactly once over n−1 round-robin rounds', () => {
    const cluster = nodes([1, 2, 3, 4, 5, 6]);
    const met = new Set<string>();
    for (let round = 0; round < 5; round++) {
      for (const p of pairNodes(cluster, config('round-robin'), round, createRng(0))) {
        met.add([p.requester, p.selected].sort().join('-'));
      }
    }
    expect(met.size).toBe(15);
  });

  it('pairs the most loaded with the least loaded under spread', () => {
    const pairs = pairNodes(nodes([50, 90, 10, 70, 30, 60]), config('spread'), 0, createRng(1));
    expect(pairs).toEqual([
      { requester: 'n1', selected: 'n2' },
      { requester: 'n3', selected: 'n4' },
      { requester: 'n5', selected: 'n0' },
    ]);
  });

  it('lets only nodes above the high threshold request under sender-initiated pairing', () => {
    const pairs = firstRoundPairs([95, 50, 40, 30, 20], 'sender', { withRandom: false, highThreshold: 0.8 });
    expect(pairs).toHaveLength(1);
    expect(pairs[0]?.requester).toBe('n0');
  });

  it('lets only nodes below the low threshold request under receiver-initiated pairing', () => {
    const pairs = firstRoundPairs([95, 50, 40, 30, 5], 'receiver', { withRandom: false, lowThreshold: 0.1 });
    expect(pairs).toHaveLength(1);
    expect(pairs[0]?.requester).toBe('n4');
  });

  it('pairs senders with receivers first under symmetric pairing', () => {
    const pairs = firstRoundPairs([95, 50, 40, 30, 5], 'symmetric', {
      withRandom: false,
      highThreshold: 0.8,
      lowThreshold: 0.1,
    });
    expect(pairs).toEqual([{ requester: 'n0', selected: 'n4' }]);
  });

  it('pairs the nodes a threshold policy leaves over at random when combined with random', () => {
    const pairs = firstRoundPairs([95, 50, 40, 30, 20], 'sender', { withRandom: true, highThreshold: 0.8 });
    expect(pairs).toHaveLength(2);
    expect(pairs[0]?.requester).toBe('n0');
  });
});

describe('pairNodes edge cases', () => {
  const key = (p: { requester: string; selected: string }) => [p.requester, p.selected].sort().join('-');

  it('pairs nobody when there are no nodes or one node', () => {
    for (const policy of ['random', 'round-robin', 'spread', 'symmetric'] as const) {
      expect(pairNodes([], config(policy), 4, createRng(1))).toEqual([]);
      expect(pairNodes(nodes([50]), config(policy), 4, createRng(1))).toEqual([]);
    }
  });

  it('round-robin on an odd count leaves one node out each round and meets every pair once in n rounds', () => {
    const cluster = nodes([1, 2, 3, 4, 5]);
    const seen: string[] = [];
    for (let round = 0; round < 5; round++) {
      const pairs = pairNodes(cluster, config('round-robin'), round, createRng(1));
      expect(pairs).toHaveLength(2);
      seen.push(...pairs.map(key));
    }
    expect(new Set(seen).size).toBe(10);
    expect(seen).toHaveLength(10);
  });

  it('round-robin repeats with period n − 1 on an even count, every pair once per period', () => {
    const cluster = nodes([1, 2, 3, 4, 5, 6]);
    const round = (r: number) => pairNodes(cluster, config('round-robin'), r, createRng(1)).map(key).sort();
    const seen = [0, 1, 2, 3, 4].flatMap(round);
    expect(new Set(seen).size).toBe(15);
    for (const r of [0, 3, 4, 7]) expect(round(r + 5)).toEqual(round(r));
    for (const pairs of [0, 1, 2, 3, 4].map(round)) expect(pairs).toHaveLength(3);
  });

  it('counts a node exactly at the high threshold as no sender, and one exactly at the low as no receiver', () => {
    // highThreshold 0.8 and lowThreshold 0.3 of capacity 100.
    const at = nodes([80, 30, 50, 50]);
    const noRandom = { withRandom: false, highThreshold: 0.8, lowThreshold: 0.3 };
    expect(pairNodes(at, config('sender', noRandom), 0, createRng(1))).toEqual([]);
    expect(pairNodes(at, config('receiver', noRandom), 0, createRng(1))).toEqual([]);
    const past = nodes([81, 29, 50, 50]);
    expect(pairNodes(past, config('sender', noRandom), 0, createRng(1))).toHaveLength(1);
    expect(pairNodes(past, config('receiver', noRandom), 0, createRng(1))).toHaveLength(1);
  });

  it('lets only senders request under sender-initiated pairing, and only receivers under receiver-initiated', () => {
    const noRandom = { withRandom: false, highThreshold: 0.8, lowThreshold: 0.3 };
    // One receiver (10), no sender: sender-initiated pairs nobody, receiver-initiated pairs it.
    const cluster = nodes([10, 50, 60]);
    expect(pairNodes(cluster, config('sender', noRandom), 0, createRng(1))).toEqual([]);
    const pairs = pairNodes(cluster, config('receiver', noRandom), 0, createRng(1));
    expect(pairs).toHaveLength(1);
    expect(pairs[0]?.requester).toBe('n0');
  });
});
