// From the node items a run read to the domain's RoundInput: which nodes are in this round's shard,
// which of those the run must leave out (and why), and the VMs from the nodes' load reports.

import type { DriverName } from '../../shared/domain/guests.ts';
import { IdIndex } from '../../shared/domain/id-index.ts';
import type { NodeObservation } from '../../shared/domain/learning.ts';
import { vmLoad as loadOf } from '../../shared/domain/load.ts';
import { isLive } from '../../shared/domain/placement.ts';
import { shardOf } from '../../shared/domain/shards.ts';
import type { NodeInfo, RoundInput, VmInfo } from '../../shared/domain/types.ts';
import { BUSY, PINNED, type VmTable } from '../../shared/domain/vm-table.ts';
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
  /** The position of a node in `input.nodes` (the first, for a node listed twice), or -1. */
  nodeAt: (node: string) => number;
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
 * Per VM of `input.vms`: the domain's columns (see vm-table.ts: id, node position, load there,
 * memory, busy and pinned flags, cooldown, group, driver) and the fence it was reported under. Sized
 * by the VMs reported, so that filling them allocates nothing per VM. The VM's report entry (its
 * factors, and its VmInfo when asked) is looked up in its node's report.
 */
function vmColumns(reported: number) {
  return {
    ids: new Array<string>(reported),
    fences: new Float64Array(reported),
    node: new Int32Array(reported),
    load: new Float64Array(reported),
    memPages: new Float64Array(reported),
    flags: new Uint8Array(reported),
    cooldownUntil: new Float64Array(reported),
    group: undefined as (string | undefined)[] | undefined,
    driver: undefined as (DriverName | undefined)[] | undefined,
  };
}

type VmColumns = ReturnType<typeof vmColumns>;

/**
 * Every VM the taking nodes report, in report order, into columns, with each node's load (each VM's
 * vmLoad, summed as nodeLoad sums them) and how many of its VMs are busy (in flight).
 */
function reportedVms(taking: readonly NodeRecord[], upTo: number) {
  const nodes: NodeInfo[] = new Array(taking.length);
  const columns = vmColumns(upTo);
  const { ids, fences, node, load, memPages, flags, cooldownUntil } = columns;
  const inFlight: Record<string, number> = {};
  const sums = new Float64Array(taking.length);
  let count = 0;
  for (let i = 0; i < taking.length; i++) {
    const record = taking[i] as NodeRecord;
    const info = nodeInfoOf(record);
    nodes[i] = info;
    const w = info.weights;
    let sum = 0;
    let busy = 0;
    const reported = (record.report as NonNullable<NodeRecord['report']>).vms;
    for (const id in reported) {
      const entry = reported[id] as ReportedVm;
      if (entry.busy) busy++;
      const f = entry.factors;
      const k = count++;
      ids[k] = id;
      fences[k] = entry.fence;
      // vmLoad itself, not its terms written out here: in a process's first runs this loop may run
      // unoptimised (its code thrown away for feedback it had not met), where each term is a new
      // boxed number, 100,000 VMs over; the call, optimised on its own, returns one.
      const vmLoad = loadOf(f, w);
      node[k] = i;
      load[k] = vmLoad;
      memPages[k] = entry.memPages;
      flags[k] = (entry.busy ? BUSY : 0) | (entry.pinned ? PINNED : 0);
      cooldownUntil[k] = entry.cooldownUntil ?? Number.NaN;
      if (entry.group !== undefined) {
        columns.group ??= new Array(upTo);
        columns.group[k] = entry.group;
      }
      if (entry.driver !== undefined) {
        columns.driver ??= new Array(upTo);
        columns.driver[k] = entry.driver;
      }
      sum += vmLoad;
    }
    sums[i] = sum;
    if (busy > 0) inFlight[record.id] = busy;
  }
  return { nodes, columns, inFlight, sums, count };
}

/**
 * The VMs by id. A VM two nodes report is being moved, so neither copy is a candidate: the first copy
 * stays, marked busy, and the later ones are dropped (with their load, so each node's load is summed
 * again over the VMs it keeps, in the same order).
 */
function indexVms(read: ReturnType<typeof reportedVms>): { byId: IdIndex; count: number } {
  const { columns, sums } = read;
  const { index, twins } = IdIndex.of(columns.ids, read.count);
  if (twins.length === 0) return { byId: index, count: read.count };
  for (const twin of twins) columns.flags[twin.first] = (columns.flags[twin.first] as number) | BUSY;
  const count = dropPositions(columns, read.count, twins);
  sums.fill(0);
  for (let k = 0; k < count; k++) {
    const i = columns.node[k] as number;
    sums[i] = (sums[i] as number) + (columns.load[k] as number);
  }
  return { byId: IdIndex.of(columns.ids, count).index, count };
}

/** Closes up the VMs' columns over the given positions (in increasing order); the count left. */
function dropPositions(columns: VmColumns, count: number, drop: readonly { at: number }[]) {
  const { ids, fences, node, load, memPages, flags, cooldownUntil, group, driver } = columns;
  let kept = 0;
  let next = 0;
  for (let k = 0; k < count; k++) {
    if (next < drop.length && (drop[next] as { at: number }).at === k) {
      next++;
      continue;
    }
    ids[kept] = ids[k] as string;
    fences[kept] = fences[k] as number;
    node[kept] = node[k] as number;
    load[kept] = load[k] as number;
    memPages[kept] = memPages[k] as number;
    flags[kept] = flags[k] as number;
    cooldownUntil[kept] = cooldownUntil[k] as number;
    if (group) group[kept] = group[k];
    if (driver) driver[kept] = driver[k];
    kept++;
  }
  return kept;
}

/**
 * The domain's table over the columns' first `count` VMs. A VM's `VmInfo` is made the first time a
 * step asks for it (as `vmInfoOf` makes it, busy when two nodes report it) and kept.
 */
function tableOf(
  columns: VmColumns,
  count: number,
  nodes: readonly NodeInfo[],
  taking: readonly NodeRecord[],
): VmTable {
  // The entry in the report of the VM's node (for a VM two nodes report, the first, which it keeps).
  const entryOf = (v: number) => {
    const report = (taking[columns.node[v] as number] as NodeRecord).report as NonNullable<
      NodeRecord['report']
    >;
    return report.vms[columns.ids[v] as string] as ReportedVm;
  };
  const made: VmInfo[] = [];
  const info = (v: number): VmInfo => {
    let vm = made[v];
    if (vm === undefined) {
      const entry = entryOf(v);
      vm = vmInfoOf(columns.ids[v] as string, (nodes[columns.node[v] as number] as NodeInfo).id, entry);
      if ((columns.flags[v] as number) & BUSY) vm.busy = true;
      made[v] = vm;
    }
    return vm;
  };
  return {
    count,
    ids: columns.ids,
    node: columns.node.subarray(0, count),
    load: columns.load.subarray(0, count),
    factorsOf: (v) => entryOf(v).factors,
    memPages: columns.memPages,
    flags: columns.flags,
    cooldownUntil: columns.cooldownUntil,
    group: columns.group,
    driver: columns.driver,
    info,
  };
}

/** Each node's load by id (its override, else the sum over the VMs it keeps), in node order. */
function loadsById(nodes: readonly NodeInfo[], sums: Float64Array): Map<string, number> {
  const loads = new Map<string, number>();
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as NodeInfo;
    loads.set(node.id, node.loadOverride ?? (sums[i] as number));
  }
  return loads;
}

/**
 * Where each node's VMs lie in the columns: node i's are at `ranges[i]` up to `ranges[i + 1]` (the
 * columns are filled node by node, and dropping a VM two nodes report keeps that order).
 */
function vmRanges(node: Int32Array, count: number, nodes: number): Int32Array {
  const ranges = new Int32Array(nodes + 1);
  for (let k = 0; k < count; k++) {
    const i = (node[k] as number) + 1;
    ranges[i] = (ranges[i] as number) + 1;
  }
  for (let i = 0; i < nodes; i++) ranges[i + 1] = (ranges[i + 1] as number) + (ranges[i] as number);
  return ranges;
}

/** The nodes by id, and whether two of them share an id (a node item listed twice). */
function nodesById(nodes: readonly NodeInfo[]): { index: IdIndex; twice: boolean } {
  const ids = nodes.map((n) => n.id);
  const { index, twins } = IdIndex.of(ids, ids.length);
  return { index, twice: twins.length > 0 };
}

/** Builds the round's input from the node items (one item per node: its report carries its VMs). */
export function roundView(records: readonly NodeRecord[], options: ViewOptions): RoundView {
  const { taking, skipped, inShard, reported: upTo } = partakers(records, options);
  const read = reportedVms(taking, upTo);
  const { nodes, columns, inFlight, sums } = read;
  const { byId, count } = indexVms(read);
  const table = tableOf(columns, count, nodes, taking);
  let loads: Map<string, number> | undefined;
  // Built on first need: a dry run never asks, a run that writes asks for its learning item.
  const loadsOf = () => {
    loads ??= loadsById(nodes, sums);
    return loads;
  };
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
  const observe = (node: string): NodeObservation | undefined => {
    const report = reportOf(node);
    const load = loadsOf().get(node);
    if (!report || load === undefined) return undefined;
    return { at: report.at, load, vms: new Set(Object.keys(report.vms)) };
  };
  const nodeIds = nodesById(nodes);
  let ranges: Int32Array | undefined;
  // The node of the last call: a run asks for the fences of a pair's moves one after the other.
  let lastNode: string | undefined;
  let lastAt = -1;
  const fenceOf = (vm: string, node: string): number | undefined => {
    // Among the node's own VMs first, a few side by side in the columns: looked up among all the
    // VMs by id, each of a run's 9,700 orders missed the cache several times over (a tenth of the run).
    if (node !== lastNode) {
      lastNode = node;
      lastAt = nodeIds.index.get(node);
    }
    const i = lastAt;
    if (i >= 0) {
      ranges ??= vmRanges(columns.node, count, nodes.length);
      const end = ranges[i + 1] as number;
      for (let k = ranges[i] as number; k < end; k++) if (columns.ids[k] === vm) return columns.fences[k];
    }
    const k = byId.get(vm);
    // A VM two nodes report is indexed under the first: the other's fence is in its report.
    if (k >= 0 && (nodes[columns.node[k] as number] as NodeInfo).id === node) return columns.fences[k];
    return reportOf(node)?.vms[vm]?.fence;
  };
  let vms: VmInfo[] | undefined;
  const input = {
    nodes,
    // Made on first read: the round reads the table (below), not these objects.
    get vms(): VmInfo[] {
      if (!vms) {
        vms = new Array(count);
        for (let v = 0; v < count; v++) vms[v] = table.info(v);
      }
      return vms;
    },
    round: options.round,
    now: options.now,
    inFlight,
  } as RoundInput;
  // A node listed twice would leave the round's own index pointing at its last copy: let it recompute.
  if (!nodeIds.twice) {
    input.vmLoads = { node: table.node, load: table.load };
    // Not enumerable: a copy of the input (`{ ...input }`) is the plain input of VmInfo objects.
    Object.defineProperty(input, 'table', { value: table, enumerable: false });
  }
  return {
    input,
    skipped,
    inShard,
    get loads() {
      return loadsOf();
    },
    observe,
    fenceOf,
    vmAt: (vm) => byId.get(vm),
    nodeAt: (node) => nodeIds.index.get(node),
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
