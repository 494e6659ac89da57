// The load report an agent posts with each heartbeat: the kernel's measurements for the period
// joined with what the agent knows of each VM item, so the balancer reads only node items.
import type { Holding } from '../../shared/domain/protocol.ts';
import type { LoadReport, ReportedVm } from '../../shared/storage/nodes.ts';
import type { VmRecord } from '../../shared/storage/vms.ts';
import type { VmMeasurement } from '../kernel/types.ts';

export interface ReportInput {
  now: number;
  measurements: VmMeasurement[];
  records: ReadonlyMap<string, VmRecord>;
  held: ReadonlyMap<string, Holding>;
  /** VMs with an operation (migration, suspend, …) in flight. */
  busy: ReadonlySet<string>;
  /** Work units per second the node serves, and the length of the period measured. */
  capacity: number;
  periodMs: number;
}

export function buildReport(input: ReportInput): LoadReport {
  const vms: Record<string, ReportedVm> = {};
  let total = 0;
  let steal = 0;
  let workDone = 0;
  for (const m of input.measurements) {
    const held = input.held.get(m.id);
    const record = input.records.get(m.id);
    if (!held || !record) continue;
    const entry: ReportedVm = {
      factors: m.factors,
      load: m.load,
      memPages: record.memPages,
      pinned: record.pinned,
      fence: held.fence,
      busy:
        held.paused || input.busy.has(m.id) || record.migration !== undefined || record.state !== 'RUNNING',
      digest: m.digest,
    };
    if (record.targetLoad !== undefined) entry.targetLoad = record.targetLoad;
    if (record.group !== undefined) entry.group = record.group;
    if (record.cooldownUntil !== undefined) entry.cooldownUntil = record.cooldownUntil;
    vms[m.id] = entry;
    total += m.load;
    steal += m.steal;
    workDone += m.workDone;
  }
  const served = input.capacity * (input.periodMs / 1000);
  return {
    at: input.now,
    total,
    vms,
    steal,
    utilisation: served > 0 ? Math.min(1, workDone / served) : 0,
  };
}
