// The retry of a stalled giver (decide.ts `retryStalled`), pinned: which partners it tries, how many,
// and who meets whom afterwards. Round-robin pairing at round 0 pairs a–f, b–e and c–d; partners
// without memory room (or with pinned VMs) make the exchanges that must fail fail for a stated reason.
import { describe, expect, it } from 'vitest';
import { decideRound, RETRY_PARTNERS } from '../../../shared/domain/decide.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import type { RoundDecision } from '../../../shared/domain/types.ts';
import { aConfig, aNode, aRound, vmsOn } from './fixtures.ts';

interface Node {
  id: string;
  sizes: number[];
  /** No memory room beyond its own VMs (16 pages each), or this many pages in all. */
  full?: boolean;
  pages?: number;
  pinned?: boolean;
}

function round(nodes: Node[], vmPages: Record<string, number> = {}): RoundDecision {
  const input = aRound(
    nodes.map((n) =>
      aNode({ id: n.id, memCapacityPages: n.pages ?? (n.full ? 16 * n.sizes.length : 1_000_000) }),
    ),
    nodes
      .flatMap((n) => vmsOn(n.id, n.sizes, { pinned: n.pinned ?? false }))
      .map((vm) => ({ ...vm, memPages: vmPages[vm.id] ?? 16 })),
  );
  const config = aConfig({ pairing: 'round-robin', aim: 'pair', trigger: 'difference' });
  return decideRound(input, config, createRng(1));
}

const summary = (d: RoundDecision) =>
  d.pairs.map(
    (p) => `${p.requester}-${p.selected} ${p.reason.code}${p.moves.map((m) => ` ${m.vm}→${m.to}`).join('')}`,
  );

describe(`the retry of a stalled giver (${RETRY_PARTNERS} partners)`, () => {
  // a (10: 6 4) cannot give f (8, pinned) anything that keeps their maximum; b, c and d have no memory
  // room; e (5) could take a's 4 (10 / 5 → 6 / 9).
  const nodes = (dRoom: boolean): Node[] => [
    { id: 'a', sizes: [6, 4] },
    { id: 'b', sizes: [2], full: true },
    { id: 'c', sizes: [3], full: true },
    { id: 'd', sizes: [4], full: !dRoom },
    { id: 'e', sizes: [5] },
    { id: 'f', sizes: [8], pinned: true },
  ];

  it('tries the least loaded nodes first, and no more than three', () => {
    // b, c and d are tried and refuse; e, the fourth, is never tried.
    expect(summary(round(nodes(false)))).toEqual(['b-e constraint', 'a-f no-gain', 'c-d constraint']);
  });

  it('takes the third when it can, and pairs the two nodes left alone', () => {
    // d now has room: a gives it its 4 (10 / 4 → 6 / 8); f and c, whose partners left, meet.
    expect(summary(round(nodes(true)))).toEqual(['b-e constraint', 'a-d moved a-1→d', 'f-c constraint']);
  });

  it('does not count the partner it stalled with among the three', () => {
    // a (10: 9 1) stalled with f (1, pinned), the least loaded node: f has room for a's 9 only (the 1
    // needs 64 pages), and the 9 would only mirror the gap. b and c are full; d (4) takes a's 1 as the
    // third partner tried: f is not counted.
    const d = round(
      [
        { id: 'a', sizes: [9, 1] },
        { id: 'b', sizes: [2], full: true },
        { id: 'c', sizes: [3], full: true },
        { id: 'd', sizes: [4] },
        { id: 'e', sizes: [5] },
        { id: 'f', sizes: [1], pinned: true, pages: 32 },
      ],
      { 'a-1': 64 },
    );
    expect(summary(d)).toEqual(['b-e constraint', 'a-d moved a-1→d', 'f-c no-gain']);
  });

  it('retries with the more loaded node of the stalled pair as the giver, also when it was the one selected', () => {
    // The same nodes as above with a and f swapped: f (10: 6 4) is now the selected node of a–f and a
    // (8, pinned) the requester. f is still the giver: it gives d its 4, and a and c meet.
    const swapped = nodes(true).map((n) =>
      n.id === 'a' ? { ...n, id: 'f' } : n.id === 'f' ? { ...n, id: 'a' } : n,
    );
    const order = ['a', 'b', 'c', 'd', 'e', 'f'];
    swapped.sort((x, y) => order.indexOf(x.id) - order.indexOf(y.id));
    expect(summary(round(swapped))).toEqual(['b-e constraint', 'f-d moved f-1→d', 'a-c constraint']);
  });

  it('tries only partners less loaded than the giver', () => {
    // b (10: 6 4) stalled with c (8, pinned); d (3) is full. a (12: 1 11) is more loaded than b and
    // could give it its 1 (12 / 10 → 11 / 11), but a retry gives load away: it stops before a.
    const d = round([
      { id: 'a', sizes: [1, 11] },
      { id: 'b', sizes: [6, 4] },
      { id: 'c', sizes: [8], pinned: true },
      { id: 'd', sizes: [3], full: true },
    ]);
    expect(summary(d)).toEqual(['a-d constraint', 'b-c no-gain']);
  });
  it('skips a stalled giver that an earlier retry already paired', () => {
    // Two stalled pairs: a (10: 6 4, 64 pages each) with f (8, pinned) and b (5: 3 2) with e (4,
    // pinned). a, the widest, retries first: d has room for 16 pages only and c none, so a gives its 4
    // to e, the third partner tried (10 / 4 → 6 / 8); f and b, left alone, meet. b could still give d
    // its 2 (5 / 1 → 3 / 3), but it already met f: it does not retry, and d keeps its pair with c.
    const d = round(
      [
        { id: 'a', sizes: [6, 4] },
        { id: 'b', sizes: [3, 2] },
        { id: 'c', sizes: [3], full: true, pinned: true },
        { id: 'd', sizes: [1], pages: 32 },
        { id: 'e', sizes: [4], pinned: true },
        { id: 'f', sizes: [8], pinned: true },
      ],
      { 'a-0': 64, 'a-1': 64 },
    );
    expect(summary(d)).toEqual(['c-d constraint', 'a-e moved a-1→e', 'f-b constraint']);
  });
});
