// Trace replay: each VM's CPU demand follows a utilisation trace (PlanetLab format: one percentage
// per 5-minute tick). Nodes serve `capacity` units per tick; what a node cannot serve is steal.
import { createRng } from '../domain/rng.ts';
import type { BalancingConfig, NodeInfo, VmInfo } from '../domain/types.ts';
import { bytesOf } from './cluster.ts';
import { greedyState } from './greedy.ts';
import { PEERS, type Peer, type RoundMemory, seesawRound, simOutcome } from './simulate.ts';
import { LoadTracker } from './tracker.ts';
import type { SimMove, SimResult, SimSeries, StrategyResult } from './types.ts';

/** Utilisation traces: one series of percentages per VM. */
export interface TraceSet {
  name: string;
  vms: { id: string; percent: number[] }[];
}

/**
 * What the balancer sees of a VM's demand: the last tick alone, the peak over the last `window`
 * ticks, or an exponentially smoothed level (`alpha` weight on the newest tick).
 */
export type Estimator = { kind: 'last' } | { kind: 'peak'; window: number } | { kind: 'ewma'; alpha: number };

export interface TraceOptions {
  nodes: number;
  capacity: number;
  seed: number;
  config: BalancingConfig;
  estimator: Estimator;
  /** Ticks to replay (default: the shortest trace). */
  ticks?: number;
  /** Simulated time per tick (PlanetLab: 5 minutes). */
  intervalMs?: number;
  greedy?: boolean;
}

/** Parse `last`, `peak:N` or `ewma:A`. */
export function parseEstimator(text: string): Estimator {
  const [kind, arg] = text.split(':');
  if (kind === 'last' && arg === undefined) return { kind: 'last' };
  if (kind === 'peak') {
    const window = Number(arg ?? 6);
    if (Number.isInteger(window) && window >= 1) return { kind: 'peak', window };
  }
  if (kind === 'ewma') {
    const alpha = Number(arg ?? 0.3);
    if (alpha > 0 && alpha <= 1) return { kind: 'ewma', alpha };
  }
  throw new Error(`invalid estimator "${text}": use last, peak:N (N ≥ 1 ticks) or ewma:A (0 < A ≤ 1)`);
}

export function formatEstimator(e: Estimator): string {
  return e.kind === 'last' ? 'last' : e.kind === 'peak' ? `peak:${e.window}` : `ewma:${e.alpha}`;
}

type Strategy = 'seesaw' | Peer | 'none';

/** Replay the traces under Seesaw, greedy and no balancing; deterministic for a given seed. */
export function replayTraces(
  traces: TraceSet,
  options: TraceOptions,
): { result: SimResult; series: SimSeries } {
  if (traces.vms.length === 0) throw new Error(`trace set ${traces.name} has no traces`);
  if (!(options.nodes >= 1)) throw new Error('--nodes must be at least 1');
  if (!(options.capacity > 0)) throw new Error('--capacity must be positive');
  const ticks = options.ticks ?? Math.min(...traces.vms.map((v) => v.percent.length));
  const seesaw = runTraceStrategy('seesaw', traces, options, ticks);
  const greedy = options.greedy === false ? undefined : runTraceStrategy('greedy', traces, options, ticks);
  const none = runTraceStrategy('none', traces, options, ticks);
  const lnu = runTraceStrategy('lowNodeUtilization', traces, options, ticks);
  const proxlb = runTraceStrategy('proxlb', traces, options, ticks);
  const peakDemand = traces.vms.reduce((m, v) => Math.max(m, ...v.percent.slice(0, ticks)), 0) / 100;
  const meanTotal =
    traces.vms.reduce((s, v) => s + v.percent.slice(0, ticks).reduce((a, b) => a + b, 0), 0) / 100 / ticks;
  const head = {
    scenario: `trace:${traces.name}`,
    nodes: options.nodes,
    vms: traces.vms.length,
    rounds: ticks,
    // Mean demand per node over the day, or the largest single demand, whichever is larger.
    lowerBound: Math.max(meanTotal / options.nodes, peakDemand),
  };
  // Without the greedy run its figures stand in as Seesaw's, with no series.
  const greedyRun = greedy ?? { result: seesaw.result, points: [] };
  return simOutcome(head, { seesaw, greedy: greedyRun, none, lowNodeUtilization: lnu, proxlb });
}

function runTraceStrategy(strategy: Strategy, traces: TraceSet, options: TraceOptions, ticks: number) {
  const intervalMs = options.intervalMs ?? 300_000;
  const width = String(Math.max(0, options.nodes - 1)).length;
  const nodes: NodeInfo[] = Array.from({ length: options.nodes }, (_, i) => ({
    id: `n${String(i).padStart(width, '0')}`,
    weights: { cpu: 1, io: 0, mem: 0 },
    capacity: options.capacity,
    memCapacityPages: Number.MAX_SAFE_INTEGER,
    draining: false,
  }));
  const nodeIndex = new Map(nodes.map((n, i) => [n.id, i]));
  // 1 GiB of guest memory per VM; spread round-robin at the start.
  const vms: VmInfo[] = traces.vms.map((t, i) => ({
    id: t.id,
    node: (nodes[i % nodes.length] as NodeInfo).id,
    factors: { cpu: 0, io: 0, mem: 1 },
    memPages: 16_384,
    pinned: false,
  }));
  const byId = new Map(vms.map((v) => [v.id, v]));
  const series = traces.vms.map((t) => t.percent);
  const demand = new Float64Array(vms.length);
  const smoothed = new Float64Array(vms.length);
  const nodeDemand = new Float64Array(nodes.length);
  const vmIndex = new Map(vms.map((v, i) => [v.id, i]));
  const rng = createRng(options.seed);
  const tracker = new LoadTracker(nodes, new Array(nodes.length).fill(0));
  const peer = strategy === 'seesaw' || strategy === 'none' ? undefined : PEERS[strategy];
  const greedy = peer ? greedyState(nodes, vms) : undefined;
  const moves: SimMove[] = [];
  const memory: RoundMemory = {};
  let overloadNodeTicks = 0;
  let steal = 0;
  let initial = { maxLoad: 0, cv: 0 };
  for (let tick = 0; tick < ticks; tick++) {
    // This tick's demand, served by the placement the previous tick's balancing left.
    nodeDemand.fill(0);
    for (let v = 0; v < vms.length; v++) {
      const d = (series[v]?.[tick] ?? 0) / 100;
      demand[v] = d;
      smoothed[v] = tick === 0 ? d : estimateStep(options.estimator, smoothed[v] ?? 0, d);
      const n = nodeIndex.get((vms[v] as VmInfo).node) as number;
      nodeDemand[n] = (nodeDemand[n] ?? 0) + d;
    }
    for (let n = 0; n < nodes.length; n++) {
      const excess = (nodeDemand[n] ?? 0) - options.capacity;
      if (excess > 1e-12) {
        overloadNodeTicks++;
        steal += excess;
      }
    }
    tracker.round = tick;
    tracker.setLoads(nodeDemand);
    if (tick === 0) initial = { maxLoad: tracker.maxLoad(), cv: tracker.cv() };
    // What the balancer sees: the estimate of each VM's demand.
    for (let v = 0; v < vms.length; v++) {
      (vms[v] as VmInfo).factors.cpu = observe(options.estimator, series[v] ?? [], tick, smoothed[v] ?? 0);
    }
    const now = tick * intervalMs;
    const record = (vmId: string, from: string, to: string) => {
      const d = demand[vmIndex.get(vmId) as number] ?? 0;
      tracker.move(from, to, d, d, bytesOf(byId.get(vmId) as VmInfo));
    };
    if (strategy === 'seesaw') {
      for (const m of seesawRound(nodes, vms, tick, now, options, rng, memory)) {
        const vm = byId.get(m.vm) as VmInfo;
        vm.node = m.to;
        vm.cooldownUntil = now + options.config.cooldownMs;
        record(m.vm, m.from, m.to);
        moves.push({ round: tick, vm: m.vm, from: m.from, to: m.to });
      }
    } else if (greedy && peer) {
      // The peers balance the same estimates Seesaw sees.
      const estimated = new Float64Array(nodes.length);
      for (const vm of vms) {
        const n = nodeIndex.get(vm.node) as number;
        estimated[n] = (estimated[n] ?? 0) + vm.factors.cpu;
      }
      peer(greedy, estimated, options.config.maxMigrationsPerCluster, now, (m) =>
        record(m.vm.id, m.from, m.to),
      );
    }
    tracker.endRound();
  }
  const result: StrategyResult = { ...tracker.summary(initial), overloadNodeTicks, steal };
  return { result, moves, points: tracker.points };
}

function estimateStep(e: Estimator, previous: number, d: number): number {
  return e.kind === 'ewma' ? e.alpha * d + (1 - e.alpha) * previous : d;
}

function observe(e: Estimator, percent: readonly number[], tick: number, smoothed: number): number {
  if (e.kind === 'ewma') return smoothed;
  if (e.kind === 'last') return (percent[tick] ?? 0) / 100;
  let peak = 0;
  for (let t = Math.max(0, tick - e.window + 1); t <= tick; t++) peak = Math.max(peak, percent[t] ?? 0);
  return peak / 100;
}
