// Tiny shards stuck above the optimum: a *mirror* exchange, where two nodes trade places (the pair's
// maximum and gap do not grow), made only when it lets the most loaded node improve with one of the
// two afterwards. The pairwise law alone cannot plan it: a mirror leaves its own pair no better off.
import { exceeds } from './exceeds.ts';
import {
  applyMove,
  budgetOf,
  candidateOf,
  candidatesFor,
  fmt,
  loadOf,
  nodeOf,
  type RoundState,
  resultFor,
  vmsOf,
} from './round-state.ts';
import { type Candidate, improves, selectSwap } from './selection.ts';
import type { NodeInfo, PairDecision, VmInfo } from './types.ts';

/** Mirrors are searched only in shards of at most this many pairable nodes... */
export const MIRROR_NODES = 8;
/** ...and at most this many VMs on each of the two nodes (every small trade is tried). */
export const MIRROR_VMS = 12;

const EPS = 1e-9;

/** A trade between X (the more loaded) and Y: `give` go X → Y, `take` go Y → X. */
interface Trade {
  give: Candidate[];
  take: Candidate[];
}

/**
 * When no pair of the shard moved and its most loaded node is stalled (`no-gain`), the first mirror
 * between two other idle nodes after which the most loaded node has an exchange that lowers its load
 * and stays below it (a move, a swap or a two-for-one swap). The mirror's pair replaces the idle pairs
 * of its two nodes; the nodes it leaves alone are paired again with `decide`.
 */
export function mirrorStalled(
  state: RoundState,
  decisions: PairDecision[],
  decide: (a: string, b: string) => PairDecision,
): PairDecision[] {
  if (!state.config.multiVm || state.trigger.trigger !== 'difference') return decisions;
  if (decisions.some((d) => d.moves.length > 0)) return decisions;
  const ids = decisions.flatMap((d) => [d.requester, d.selected]);
  if (ids.length < 3 || ids.length > MIRROR_NODES) return decisions;
  const top = ids.reduce((a, b) => (loadOf(state, b) > loadOf(state, a) ? b : a));
  // With two nodes at the maximum, unlocking one lowers nothing: mirrors would trade on forever.
  if (ids.some((id) => id !== top && loadOf(state, id) >= loadOf(state, top) - EPS)) return decisions;

  if (!decisions.some((d) => d.reason.code === 'no-gain' && (d.requester === top || d.selected === top))) {
    return decisions;
  }
  const others = ids.filter((id) => id !== top).sort((a, b) => loadOf(state, b) - loadOf(state, a));
  for (const x of others) {
    for (const y of others) {
      if (loadOf(state, y) >= loadOf(state, x)) continue;
      const trade = findMirror(state, top, x, y);
      if (trade) return [mirrorDecision(state, x, y, trade), ...regroup(decisions, x, y, decide)];
    }
  }
  return decisions;
}

function findMirror(state: RoundState, top: string, x: string, y: string): Trade | undefined {
  const [nx, ny] = [nodeOf(state, x), nodeOf(state, y)];
  if (vmsOf(state, x).length > MIRROR_VMS || vmsOf(state, y).length > MIRROR_VMS) return;
  const room = Math.min(state.clusterBudget, budgetOf(state, x), budgetOf(state, y));
  const gives = candidatesFor(state, nx, ny).candidates;
  const takes = candidatesFor(state, ny, nx).candidates;
  const lx = loadOf(state, x);
  const ly = loadOf(state, y);
  for (const trade of trades(gives, takes, room)) {
    const out = trade.give.reduce((s, c) => s + c.loadOnSource, 0);
    const into = trade.take.reduce((s, c) => s + c.loadOnSource, 0);
    const x2 = lx - out + trade.take.reduce((s, c) => s + c.loadOnTarget, 0);
    const y2 = ly + trade.give.reduce((s, c) => s + c.loadOnTarget, 0) - into;
    // Never worsens the pair: its maximum does not rise and its gap does not grow.
    if (Math.max(x2, y2) > Math.max(lx, ly) + EPS || Math.abs(x2 - y2) > Math.abs(lx - ly) + EPS) continue;
    // A trade that leaves a load where it was (two VMs of one size) is migrations for nothing: what
    // it seems to unlock was open before, and the next round would find the same trade again.
    if (!movesLoad(lx - x2, ly - y2, state.config.margin)) continue;
    if (
      unlocks(state, top, x, x2, trade.take, trade.give) ||
      unlocks(state, top, y, y2, trade.give, trade.take)
    ) {
      return trade;
    }
  }
  return undefined;
}

/**
 * Whether a trade changes both loads by more than the exceeds test's margin (and more than rounding):
 * a smaller change is not one the balancer would act on, so it cannot be worth two migrations.
 */
function movesLoad(xChange: number, yChange: number, margin: number): boolean {
  const least = Math.max(margin, EPS);
  return Math.abs(xChange) > least && Math.abs(yChange) > least;
}

/** One for none, one for one, two for one and one for two, within the migration room. */
function* trades(gives: Candidate[], takes: Candidate[], room: number): Generator<Trade> {
  for (const g of gives) yield { give: [g], take: [] };
  if (room < 2) return;
  for (const g of gives) for (const t of takes) yield { give: [g], take: [t] };
  if (room < 3) return;
  for (let i = 0; i < gives.length; i++) {
    for (let j = i + 1; j < gives.length; j++) {
      for (const t of takes) yield { give: [gives[i] as Candidate, gives[j] as Candidate], take: [t] };
    }
  }
  for (const g of gives) {
    for (let i = 0; i < takes.length; i++) {
      for (let j = i + 1; j < takes.length; j++) {
        yield { give: [g], take: [takes[i] as Candidate, takes[j] as Candidate] };
      }
    }
  }
}

/**
 * Whether `top` could then lower its load with node `z` (at load `z2`, having received `gained` and
 * lost `lost`) by a move or a swap that leaves both below top's load today.
 */
function unlocks(
  state: RoundState,
  top: string,
  z: string,
  z2: number,
  gained: Candidate[],
  lost: Candidate[],
): boolean {
  const [nt, nz] = [nodeOf(state, top), nodeOf(state, z)];
  const lt = loadOf(state, top);
  // Only what the next round would do: an exchange opens where top exceeds z, and a swap only with a
  // taker below the mean (`closeExchange`). Else the mirror unlocks nothing, and may be undone and
  // made again round after round.
  if (z2 >= lt - EPS || !exceeds(lt, z2, state.config)) return false;
  const leaving = new Set(lost.map((c) => c.vm.id));
  const zVms: VmInfo[] = [...vmsOf(state, z).filter((v) => !leaving.has(v.id)), ...gained.map((c) => c.vm)];
  const mine = candidatesFor(state, nt, nz).candidates;
  const back = zVms.map((v) => candidateOf(v, nz as NodeInfo, nt));
  const pair = { giverLoad: lt, takerLoad: z2, aimGap: 0 };
  const strict = (t: number, zz: number) => Math.max(t, zz) < lt - EPS;
  if (mine.some((c) => improves(c, pair) && strict(lt - c.loadOnSource, z2 + c.loadOnTarget))) return true;
  if (z2 >= state.mean) return false;
  const swap = selectSwap(mine, back, pair, 3, state.config.margin);
  if (!swap) return false;
  const t2 = lt - sum(swap.give, 'loadOnSource') + sum(swap.take, 'loadOnTarget');
  const zz = z2 + sum(swap.give, 'loadOnTarget') - sum(swap.take, 'loadOnSource');
  return strict(t2, zz);
}

const sum = (cs: Candidate[], k: 'loadOnSource' | 'loadOnTarget') => cs.reduce((s, c) => s + c[k], 0);

function mirrorDecision(state: RoundState, x: string, y: string, trade: Trade): PairDecision {
  const result = resultFor(state, x, y);
  const [nx, ny] = [nodeOf(state, x), nodeOf(state, y)];
  const before = `${fmt(loadOf(state, x))}/${fmt(loadOf(state, y))}`;
  const moves = [
    ...trade.give.map((c) => applyMove(state, c, nx, ny)),
    ...trade.take.map((c) => applyMove(state, c, ny, nx)),
  ];
  const list = (cs: Candidate[]) =>
    cs.map((c) => `${c.vm.id} (${fmt(c.loadOnSource)})`).join(' and ') || 'nothing';
  return result(
    {
      code: 'moved',
      detail: `mirror: ${x} gave ${list(trade.give)} for ${list(trade.take)} of ${y}: ${before} → ${fmt(loadOf(state, x))}/${fmt(loadOf(state, y))}, so the most loaded node can improve next`,
    },
    moves,
  );
}

/** The decisions without the idle pairs of x and y; the nodes those pairs leave alone pair up again. */
function regroup(
  decisions: PairDecision[],
  x: string,
  y: string,
  decide: (a: string, b: string) => PairDecision,
): PairDecision[] {
  const orphans: string[] = [];
  const kept = decisions.filter((d) => {
    const hit = [d.requester, d.selected].some((id) => id === x || id === y);
    if (hit) for (const id of [d.requester, d.selected]) if (id !== x && id !== y) orphans.push(id);
    return !hit;
  });
  for (let i = 0; i + 1 < orphans.length; i += 2)
    kept.push(decide(orphans[i] as string, orphans[i + 1] as string));
  return kept;
}
