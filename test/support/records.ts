// Storage records as the balancer reads and writes them, for tests that feed them without a table.
import type { PairDecision } from '../../shared/domain/types.ts';
import type { NodeRecord, ReportedVm } from '../../shared/storage/nodes.ts';

/** A VM as an agent reports it: CPU factor 1 (load 1), 16 pages, fence 1, idle. */
export function aReportedVm(over: Partial<ReportedVm> = {}): ReportedVm {
  return {
    factors: { cpu: 1, io: 0, mem: 0 },
    load: 1,
    memPages: 16,
    pinned: false,
    fence: 1,
    busy: false,
    digest: 'd',
    ...over,
  };
}

/** A live node of capacity 4 with CPU-only unit weights, registered a minute before `now`, that reported `vms` a second ago. */
export function aNodeRecord(
  id: string,
  { now, vms = {}, ...over }: Partial<NodeRecord> & { now: number; vms?: Record<string, ReportedVm> },
): NodeRecord {
  const total = Object.values(vms).reduce((sum, vm) => sum + vm.load, 0);
  return {
    id,
    weights: { cpu: 1, io: 0, mem: 0 },
    capacity: 4,
    memCapacityPages: 100_000,
    draining: false,
    labels: {},
    incarnation: 'i',
    leaseUntil: now + 60_000,
    registeredAt: now - 60_000,
    updatedAt: now,
    report: { at: now - 1000, total, vms, steal: 0, utilisation: total / 4 },
    ...over,
  };
}

/** A pair of a run record: `requester` and `selected` at loads `[r, s]`, no moves, predicted unchanged. */
export function aPair(
  requester: string,
  selected: string,
  [r, s]: [number, number],
  over: Partial<PairDecision> = {},
): PairDecision {
  return {
    requester,
    selected,
    loads: { requester: r, selected: s },
    moves: [],
    reason: { code: 'balanced', detail: '' },
    predicted: { requester: r, selected: s },
    ...over,
  };
}
