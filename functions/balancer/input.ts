// From the node items a run read to the domain's RoundInput: which nodes are in this round's shard,
// which of those the run must leave out (and why), and the VMs from the nodes' load reports.
import type { NodeObservation } from '../../shared/domain/learning.ts';
import { vmLoad } from '../../shared/domain/load.ts';
import { isLive } from '../../shared/domain/placement.ts';
import { shardOf } from '../../shared/domain/shards.ts';
import type { NodeInfo, RoundInput, VmInfo } from '../../shared/domain/types.ts';
import { type NodeRecord, nodeInfoOf, type ReportedVm } from '../../shared/storage/nodes.ts';

export interface RoundView {
  input: RoundInput;
  /** Nodes of the shard the run leaves out, with the reason. */
  skipped: { node: string; reason: string }[];
  /** How many node items the shard hash put in this run's shard. */
  inShard: number;
  /** Each considered node's load (under its own weights) as the domain computes it. */
  loads: Map<string, number>;
  /** What a considered node's report shows, for judging earlier exchanges (built on demand). */
  observe: (node: string) => NodeObservation | undefined;
  /** The fence a VM runs under on the node that reported it: orders are conditional on it. */
  fenceOf: (vm: string, node: string) => number | undefined;
}

export interface ViewOptions {
  now: number;
  round: number;
  shard: number;
  shards: number;
  reportStaleMs: number;
  /** This run's id: a claim it holds itself does not keep a node out. */
  run: string;
}

/** Why a node of the shard cannot take part in the round, or undefined when it can. */
export function exclusionOf(node: NodeRecord, options: ViewOptions): string | undefined {
  if (!isLive(node, options.now)) return `lease lapsed ${options.now - node.leaseUntil} ms ago`;
  if (!node.report) return 'no load report yet';
  const age = options.now - node.report.at;
  if (age > options.reportStaleMs) return `stale report: ${age} ms old (bound ${options.reportStaleMs} ms)`;
  if (node.claim && node.claim.until >= options.now && node.claim.run !== options.run) {
    return `claimed by run ${node.claim.run} until ${node.claim.until}`;
  }
  return undefined;
}

/** Builds the round's input from the node items (one item per node: its report carries its VMs). */
export function roundView(records: readonly NodeRecord[], options: ViewOptions): RoundView {
  const nodes: NodeInfo[] = [];
  const vms: VmInfo[] = [];
  const inFlight: Record<string, number> = {};
  const skipped: RoundView['skipped'] = [];
  const seen = new Map<string, VmInfo>();
  const loads = new Map<string, number>();
  const reports = new Map<string, NonNullable<NodeRecord['report']>>();
  let inShard = 0;
  for (const record of records) {
    if (shardOf(record.id, options.round, options.shards) !== options.shard) continue;
    inShard++;
    const why = exclusionOf(record, options);
    if (why) {
      skipped.push({ node: record.id, reason: why });
      continue;
    }
    const report = record.report as NonNullable<NodeRecord['report']>;
    const info = nodeInfoOf(record);
    nodes.push(info);
    reports.set(record.id, report);
    // The node's load as nodeLoad computes it, summed in the same pass over its report.
    let load = 0;
    let busy = 0;
    for (const id in report.vms) {
      const entry = report.vms[id] as ReportedVm;
      if (entry.busy) busy++;
      const twin = seen.get(id);
      if (twin) {
        // Reported by two nodes: a move is under way, so neither copy is a candidate.
        twin.busy = true;
        continue;
      }
      const vm: VmInfo = {
        id,
        node: record.id,
        factors: entry.factors,
        memPages: entry.memPages,
        pinned: entry.pinned,
        busy: entry.busy,
      };
      if (entry.targetLoad !== undefined) vm.targetLoad = entry.targetLoad;
      if (entry.group !== undefined) vm.group = entry.group;
      if (entry.cooldownUntil !== undefined) vm.cooldownUntil = entry.cooldownUntil;
      if (entry.driver !== undefined) vm.driver = entry.driver;
      seen.set(id, vm);
      load += vmLoad(vm.factors, info.weights);
      vms.push(vm);
    }
    loads.set(record.id, info.loadOverride ?? load);
    if (busy > 0) inFlight[record.id] = busy;
  }
  const observe = (node: string): NodeObservation | undefined => {
    const report = reports.get(node);
    const load = loads.get(node);
    if (!report || load === undefined) return undefined;
    return { at: report.at, load, vms: new Set(Object.keys(report.vms)) };
  };
  return {
    input: { nodes, vms, round: options.round, now: options.now, inFlight },
    skipped,
    inShard,
    loads,
    observe,
    fenceOf: (vm, node) => reports.get(node)?.vms[vm]?.fence,
  };
}
