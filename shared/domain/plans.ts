// A reviewed plan: the moves a dry run decided, with the fences and node loads it saw. Applying it
// orders exactly those moves, but only while the cluster still looks like what was reviewed.
import type { Move } from './types.ts';

/** One move of a plan, with the fence the VM ran under when the plan was made. */
export interface PlannedMove extends Move {
  fence: number;
}

/** How far a node's load may drift from what the plan saw before an apply is refused. */
export interface DriftBound {
  /** Load units: drift within this is always accepted. */
  absolute: number;
  /** Fraction of the load the plan saw: drift within it is accepted too. */
  relative: number;
}

/** Default bound: a node may drift by 0.05 load units or 10 % of what the plan saw, whichever is larger. */
export const DEFAULT_DRIFT: DriftBound = { absolute: 0.05, relative: 0.1 };

/** Default lifetime of a plan: five minutes, a few balancer rounds. */
export const DEFAULT_PLAN_TTL_MS = 5 * 60_000;

export type PlanStatus = 'open' | 'applied';

export interface Plan {
  id: string;
  /** The dry run that decided it. */
  run: string;
  createdAt: number;
  expiresAt: number;
  status: PlanStatus;
  moves: PlannedMove[];
  /** The load of every node a move touches, under its own weights, as the dry run saw it. */
  loads: Record<string, number>;
  drift: DriftBound;
  /** Set once applied: when, and what happened to each move. */
  appliedAt?: number;
  outcome?: { vm: string; migration: string; outcome: string; detail?: string }[];
}

/** Something that changed since the plan was made; `kind` is stable, `detail` is for people. */
export type PlanChange =
  | { kind: 'fence'; vm: string; seen: number; now: number | null; detail: string }
  | { kind: 'owner'; vm: string; seen: string; now: string | null; detail: string }
  | { kind: 'state'; vm: string; detail: string }
  | { kind: 'load'; node: string; seen: number; now: number; bound: number; detail: string }
  | { kind: 'node'; node: string; detail: string };

/** What the cluster looks like at apply time. */
export interface CurrentState {
  /** A VM's fence and owner now (and why it may not move, if so), or undefined when it is gone. */
  vm(id: string): { fence: number; owner: string; unmovable?: string } | undefined;
  /** A node's load now under its own weights, or undefined when it may not take part (with why). */
  node(id: string): { load: number } | { excluded: string };
}

/** The largest drift a node that was seen at `seen` may show. */
export const driftAllowed = (seen: number, bound: DriftBound) =>
  Math.max(bound.absolute, bound.relative * Math.abs(seen));

/** Every change that makes the plan stale; empty when it may be applied as reviewed. */
export function planChanges(plan: Plan, current: CurrentState): PlanChange[] {
  const changes: PlanChange[] = [];
  for (const move of plan.moves) {
    const vm = current.vm(move.vm);
    if (!vm) {
      changes.push({ kind: 'fence', vm: move.vm, seen: move.fence, now: null, detail: `${move.vm} is gone` });
      continue;
    }
    if (vm.owner !== move.from)
      changes.push({
        kind: 'owner',
        vm: move.vm,
        seen: move.from,
        now: vm.owner,
        detail: `${move.vm} moved from ${move.from} to ${vm.owner}`,
      });
    if (vm.fence !== move.fence)
      changes.push({
        kind: 'fence',
        vm: move.vm,
        seen: move.fence,
        now: vm.fence,
        detail: `${move.vm}'s fence changed from ${move.fence} to ${vm.fence}`,
      });
    if (vm.unmovable) changes.push({ kind: 'state', vm: move.vm, detail: `${move.vm} ${vm.unmovable}` });
  }
  for (const [node, seen] of Object.entries(plan.loads).sort(([a], [b]) => a.localeCompare(b))) {
    const now = current.node(node);
    if ('excluded' in now) {
      changes.push({ kind: 'node', node, detail: `${node} ${now.excluded}` });
      continue;
    }
    const bound = driftAllowed(seen, plan.drift);
    if (Math.abs(now.load - seen) > bound)
      changes.push({
        kind: 'load',
        node,
        seen,
        now: now.load,
        bound,
        detail: `${node}'s load drifted from ${round3(seen)} to ${round3(now.load)} (bound ±${round3(bound)})`,
      });
  }
  return changes;
}

/** Whether the plan can no longer be applied because its time is up. */
export const isPlanExpired = (plan: Pick<Plan, 'expiresAt'>, now: number) => now >= plan.expiresAt;

/** The moves of a plan grouped into exchanges (one per node pair), in plan order. */
export function planExchanges(
  moves: readonly PlannedMove[],
): { nodes: [string, string]; moves: PlannedMove[] }[] {
  const byPair = new Map<string, { nodes: [string, string]; moves: PlannedMove[] }>();
  for (const move of moves) {
    const nodes = [move.from, move.to].sort() as [string, string];
    const key = nodes.join('|');
    let exchange = byPair.get(key);
    if (!exchange) {
      exchange = { nodes, moves: [] };
      byPair.set(key, exchange);
    }
    exchange.moves.push(move);
  }
  return [...byPair.values()];
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
