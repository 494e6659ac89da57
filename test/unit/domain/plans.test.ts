// Whether a plan still matches the cluster: every change that makes it stale is named, and drift
// within the stated bound is not a change.
import { describe, expect, it } from 'vitest';
import {
  type CurrentState,
  DEFAULT_DRIFT,
  driftAllowed,
  isPlanExpired,
  type Plan,
  planChanges,
  planExchanges,
} from '../../../shared/domain/plans.ts';

const move = (vm: string, from: string, to: string, fence = 1) => ({
  vm,
  from,
  to,
  loadOnSource: 1,
  loadOnTarget: 1,
  fence,
});
const aPlan = (over: Partial<Plan> = {}): Plan => ({
  id: 'p',
  run: 'r',
  createdAt: 0,
  expiresAt: 1000,
  status: 'open',
  moves: [move('vm-1', 'a', 'b')],
  loads: { a: 4, b: 1 },
  drift: DEFAULT_DRIFT,
  ...over,
});
function cluster(
  vms: Record<string, { fence: number; owner: string; unmovable?: string }>,
  nodes: Record<string, number | string>,
): CurrentState {
  return {
    vm: (id) => vms[id],
    node: (id) => {
      const n = nodes[id];
      if (n === undefined) return { excluded: 'is gone' };
      return typeof n === 'number' ? { load: n } : { excluded: n };
    },
  };
}

describe('planChanges', () => {
  it('finds nothing when the cluster is as the plan saw it', () => {
    expect(planChanges(aPlan(), cluster({ 'vm-1': { fence: 1, owner: 'a' } }, { a: 4, b: 1 }))).toEqual([]);
  });

  it('names a changed fence, a new owner, a gone VM and an unmovable one', () => {
    const plan = aPlan({ moves: [move('vm-1', 'a', 'b'), move('vm-2', 'a', 'b'), move('vm-3', 'a', 'b')] });
    const changes = planChanges(
      plan,
      cluster(
        { 'vm-1': { fence: 2, owner: 'c' }, 'vm-3': { fence: 1, owner: 'a', unmovable: 'is SUSPENDING' } },
        { a: 4, b: 1 },
      ),
    );
    expect(changes.map((c) => [c.kind, c.detail])).toEqual([
      ['owner', 'vm-1 moved from a to c'],
      ['fence', "vm-1's fence changed from 1 to 2"],
      ['fence', 'vm-2 is gone'],
      ['state', 'vm-3 is SUSPENDING'],
    ]);
  });

  it('accepts drift up to max(absolute, relative × seen) and names drift past it', () => {
    expect(driftAllowed(4, DEFAULT_DRIFT)).toBeCloseTo(0.4, 12);
    expect(driftAllowed(0.1, DEFAULT_DRIFT)).toBe(0.05);
    const vms = { 'vm-1': { fence: 1, owner: 'a' } };
    expect(planChanges(aPlan(), cluster(vms, { a: 4.35, b: 0.95 }))).toEqual([]);
    const changes = planChanges(aPlan(), cluster(vms, { a: 3.5, b: 1.2 }));
    expect(changes).toEqual([
      expect.objectContaining({ kind: 'load', node: 'a', seen: 4, now: 3.5 }),
      expect.objectContaining({ kind: 'load', node: 'b', seen: 1, now: 1.2 }),
    ]);
  });

  it('names a node that may no longer take part', () => {
    const changes = planChanges(
      aPlan(),
      cluster({ 'vm-1': { fence: 1, owner: 'a' } }, { a: 4, b: 'is draining now' }),
    );
    expect(changes).toEqual([{ kind: 'node', node: 'b', detail: 'b is draining now' }]);
  });

  it('expires at expiresAt', () => {
    expect(isPlanExpired({ expiresAt: 1000 }, 999)).toBe(false);
    expect(isPlanExpired({ expiresAt: 1000 }, 1000)).toBe(true);
  });

  it('groups moves into one exchange per node pair, in plan order', () => {
    const exchanges = planExchanges([move('v1', 'a', 'b'), move('v2', 'c', 'd'), move('v3', 'b', 'a')]);
    expect(exchanges.map((e) => [e.nodes, e.moves.map((m) => m.vm)])).toEqual([
      [
        ['a', 'b'],
        ['v1', 'v3'],
      ],
      [['c', 'd'], ['v2']],
    ]);
  });
});
