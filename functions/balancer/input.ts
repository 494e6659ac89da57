// From the node items a run read to the domain's RoundInput: which nodes are in this round's shard,
// which of those the run must leave out (and why), and the VMs from the nodes' load reports.
import { IdIndex } from '../../shared/domain/id-index.ts';
import type { NodeObservation } from '../../shared/domain/learning.ts';
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
  /** The position of a VM in `input.vms`, or -1. */
  vmAt: (vm: string) => number;
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

/** The node items of the run's shard that take part in the round, and those it leaves out (with why). */
function partakers(records: readonly NodeRecord[], options: ViewOptions) {
  const taking: NodeRecord[] = [];
  const skipped: RoundView['skipped'] = [];
  let inShard = 0;
  let reported = 0;
  // One shard holds every node (shardOf answers 0 for each): the hash per node is skipped.
  const whole = options.shards === 1 && options.shard === 0 && Number.isInteger(options.round);
  for (const record of records) {
    if (!whole && shardOf(record.id, options.round, options.shards) !== options.shard) continue;
    inShard++;
    const why = exclusionOf(record, options);
    if (why) {
      skipped.push({ node: record.id, reason: why });
      continue;
    }
    taking.push(record);
    for (const _ in (record.report as NonNullable<NodeRecord['report']>).vms) reported++;
  }
  return { taking, skipped, inShard, reported };
}

/**
 * Per VM of `input.vms`: the fence it was reported under, its node (position in `nodes`) and its load
 * there. Typed arrays sized by the VMs reported, so that building them allocates nothing per VM.
 */
function vmColumns(reported: number) {
  return {
    fences: new Float64Array(reported),
    node: new Int32Array(reported),
    load: new Float64Array(reported),
  };
}

/** Builds the round's input from the node items (one item per node: its report carries its VMs). */
export function roundView(records: readonly NodeRecord[], options: ViewOptions): RoundView {
  const { taking, skipped, inShard, reported: upTo } = partakers(records, options);
  const nodes: NodeInfo[] = new Array(taking.length);
  // Made as long as the VMs reported at once (no regrowth), cut to the VMs kept at the end.
  const vms: VmInfo[] = new Array(upTo);
  let kept = 0;
  const columns = vmColumns(upTo);
  const byId = new IdIndex(upTo);
  const inFlight: Record<string, number> = {};
  const loads = new Map<string, number>();
  let reports: Map<string, NonNullable<NodeRecord['report']>> | undefined;
  // Each node's report by id (the last item of a node listed twice wins), built on first need: a
  // run asks only to judge earlier exchanges and for the fence of a VM two nodes report.
  const reportOf = (node: string) => {
    if (!reports) {
      reports = new Map();
      for (const record of taking) reports.set(record.id, record.report as NonNullable<NodeRecord['report']>);
    }
    return reports.get(node);
  };
  for (let i = 0; i < taking.length; i++) {
    const record = taking[i] as NodeRecord;
    const report = record.report as NonNullable<NodeRecord['report']>;
    const info = nodeInfoOf(record);
    nodes[i] = info;
    const w = info.weights;
    const wPaging = w.paging ?? 0;
    const wNet = w.net ?? 0;
    // The node's load as nodeLoad computes it (vmLoad's terms in vmLoad's order), summed in the same
    // pass over its report.
    let load = 0;
    let busy = 0;
    const reportedVms = report.vms;
    for (const id in reportedVms) {
      const entry = reportedVms[id] as ReportedVm;
      if (entry.busy) busy++;
      const twin = byId.add(id);
      if (twin >= 0) {
        // Reported by two nodes: a move is under way, so neither copy is a candidate.
        (vms[twin] as VmInfo).busy = true;
        continue;
      }
      const f = entry.factors;
      const k = kept++;
      vms[k] = vmInfoOf(id, record.id, entry);
      columns.fences[k] = entry.fence;
      const vmLoad =
        w.cpu * f.cpu + w.io * f.io + w.mem * f.mem + wPaging * (f.paging ?? 0) + wNet * (f.net ?? 0);
      columns.node[k] = i;
      columns.load[k] = vmLoad;
      load += vmLoad;
    }
    loads.set(record.id, info.loadOverride ?? load);
    if (busy > 0) inFlight[record.id] = busy;
  }
  vms.length = kept;
  const observe = (node: string): NodeObservation | undefined => {
    const report = reportOf(node);
    const load = loads.get(node);
    if (!report || load === undefined) return undefined;
    return { at: report.at, load, vms: new Set(Object.keys(report.vms)) };
  };
  const fenceOf = (vm: string, node: string): number | undefined => {
    const k = byId.get(vm);
    // A VM two nodes report is indexed under the first: the other's fence is in its report.
    if (k >= 0 && (vms[k] as VmInfo).node === node) return columns.fences[k];
    return reportOf(node)?.vms[vm]?.fence;
  };
  const input: RoundInput = { nodes, vms, round: options.round, now: options.now, inFlight };
  // A node listed twice (fewer loads than nodes) would leave the round's own index pointing at its
  // last copy: let it recompute.
  const n = vms.length;
  if (loads.size === nodes.length)
    input.vmLoads = { node: columns.node.subarray(0, n), load: columns.load.subarray(0, n) };
  return {
    input,
    skipped,
    inShard,
    loads,
    observe,
    fenceOf,
    vmAt: (vm) => byId.get(vm),
  };
}

/** A reported VM as the round sees it on the node that reported it. */
function vmInfoOf(id: string, node: string, entry: ReportedVm): VmInfo {
  const vm: VmInfo = {
    id,
    node,
    factors: entry.factors,
    memPages: entry.memPages,
    pinned: entry.pinned,
    busy: entry.busy,
  };
  if (entry.targetLoad !== undefined) vm.targetLoad = entry.targetLoad;
  if (entry.group !== undefined) vm.group = entry.group;
  if (entry.cooldownUntil !== undefined) vm.cooldownUntil = entry.cooldownUntil;
  if (entry.driver !== undefined) vm.driver = entry.driver;
  return vm;
}
