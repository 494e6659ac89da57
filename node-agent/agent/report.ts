// The load report an agent posts with each heartbeat: the kernel's measurements for the period
// joined with what the agent knows of each VM item, so the balancer reads only node items.
import { driverOf } from '../../shared/domain/guests.ts';
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
  /** The node's capacity in load units (NodeInfo.capacity), and the length of the period measured. */
  capacity: number;
  periodMs: number;
  /** Load units per kernel work unit per second: the node's CPU weight over the kernel's units per core. */
  loadPerWorkUnit: number;
}

export function buildReport(input: ReportInput): LoadReport {
  const vms: Record<string, ReportedVm> = {};
  let total = 0;
  let steal = 0;
  for (const m of input.measurements) {
    const held = input.held.get(m.id);
    const record = input.records.get(m.id);
    if (!held || !record) continue;
    const entry: ReportedVm = {
      factors: m.factors,
      load: m.load,
      // Disk blocks live in node memory too: placement and the balancer count them with the pages.
      memPages: record.memPages + (m.diskBlocks ?? 0),
      pinned: record.pinned,
      fence: held.fence,
      busy:
        held.paused ||
        m.error !== undefined ||
        input.busy.has(m.id) ||
        record.migration !== undefined ||
        record.state !== 'RUNNING',
      digest: m.digest,
    };
    if (record.targetLoad !== undefined) entry.targetLoad = record.targetLoad;
    if (record.group !== undefined) entry.group = record.group;
    if (record.cooldownUntil !== undefined) entry.cooldownUntil = record.cooldownUntil;
    const driver = driverOf(record.guest.kind);
    if (driver !== 'wasm') entry.driver = driver;
    vms[m.id] = entry;
    total += m.load;
    steal += m.steal;
  }
  // The kernel counts unserved demand in work units over the period; the report speaks load units.
  const seconds = input.periodMs / 1000;
  return {
    at: input.now,
    total,
    vms,
    steal: seconds > 0 ? (steal / seconds) * input.loadPerWorkUnit : 0,
    utilisation: input.capacity > 0 ? total / input.capacity : 0,
  };
}
