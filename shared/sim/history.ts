// History replay: rebuild a cluster from run records exported from a live cluster (`seesaw runs
// --json`) and replay it under another policy, beside what the recorded runs did.
import { z } from 'zod';
import type { NodeInfo, VmInfo } from '../domain/types.ts';
import { simulate } from './simulate.ts';
import type { Scenario, SimOptions, SimResult, SimSeries } from './types.ts';

const move = z.object({
  vm: z.string(),
  from: z.string(),
  to: z.string(),
  loadOnSource: z.number().optional(),
  load: z.number().optional(),
});

/** A balancer run record (shared/storage/runs.ts RunRecord); only the fields replay needs. */
const runRecord = z.object({
  round: z.number().int(),
  pairs: z.array(
    z.object({
      requester: z.string(),
      selected: z.string(),
      loads: z.object({ requester: z.number(), selected: z.number() }),
      moves: z.array(move),
    }),
  ),
  orders: z.array(z.object({ vm: z.string(), outcome: z.string() })).optional(),
  dryRun: z.boolean().optional(),
});

/** The simple form: what each round saw and moved. */
const simpleRound = z.object({
  round: z.number().int(),
  nodes: z
    .array(z.object({ id: z.string(), load: z.number().min(0), capacity: z.number().positive().optional() }))
    .min(1),
  vms: z
    .array(
      z.object({
        id: z.string(),
        node: z.string(),
        load: z.number().min(0),
        memPages: z.number().int().min(0).optional(),
      }),
    )
    .optional(),
  moves: z.array(move).default([]),
});

export const historyFileSchema = z.union([
  z.array(runRecord).min(1),
  z.object({ runs: z.array(runRecord).min(1) }),
  z.object({ rounds: z.array(simpleRound).min(1) }),
]);

type SimpleRound = z.infer<typeof simpleRound>;

/** What the recorded runs did, for comparison with the replay. */
export interface Recorded {
  rounds: number;
  migrations: number;
  initial: { maxLoad: number; cv: number };
  final: { maxLoad: number; cv: number };
}

/** Normalise either accepted form to rounds in order (shards of one round merged). */
export function historyRounds(json: unknown, source: string): SimpleRound[] {
  const parsed = historyFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `${source}: not a run history (expected an array of run records, {"runs": [...]} or {"rounds": [...]}): ${issue?.message ?? ''}`,
    );
  }
  const data = parsed.data;
  if (!Array.isArray(data) && 'rounds' in data) return [...data.rounds].sort((a, b) => a.round - b.round);
  const runs = Array.isArray(data) ? data : data.runs;
  const byRound = new Map<number, SimpleRound>();
  for (const run of runs) {
    const r = byRound.get(run.round) ?? { round: run.round, nodes: [], moves: [] };
    const seen = new Set(r.nodes.map((n) => n.id));
    const written =
      run.orders && !run.dryRun
        ? new Set(run.orders.filter((o) => o.outcome === 'written').map((o) => o.vm))
        : undefined;
    for (const p of run.pairs) {
      for (const [id, load] of [
        [p.requester, p.loads.requester],
        [p.selected, p.loads.selected],
      ] as const) {
        if (!seen.has(id)) r.nodes.push({ id, load });
        seen.add(id);
      }
      for (const m of p.moves) if (!written || written.has(m.vm)) r.moves.push(m);
    }
    byRound.set(run.round, r);
  }
  return [...byRound.values()].sort((a, b) => a.round - b.round);
}

/** A cluster like the first recorded round: known VMs where the history names them, filler for the rest. */
export function clusterFromHistory(rounds: SimpleRound[], source: string): Scenario {
  const first = rounds[0];
  if (!first || first.nodes.length === 0) throw new Error(`${source}: the first round has no nodes`);
  const nodes: NodeInfo[] = first.nodes.map((n) => ({
    id: n.id,
    weights: { cpu: 1, io: 0, mem: 0 },
    capacity: n.capacity ?? 0,
    memCapacityPages: Number.MAX_SAFE_INTEGER,
    draining: false,
  }));
  const nodeIds = new Set(nodes.map((n) => n.id));
  const vms: VmInfo[] = [];
  const vm = (id: string, node: string, load: number, memPages = 16_384): VmInfo => ({
    id,
    node,
    factors: { cpu: load, io: 0, mem: 0 },
    memPages,
    pinned: false,
  });
  if (first.vms) {
    for (const v of first.vms) if (nodeIds.has(v.node)) vms.push(vm(v.id, v.node, v.load, v.memPages));
  } else {
    // VMs named by moves, placed where they first moved from, at the load they moved with.
    const known = new Map<string, { node: string; load: number }>();
    for (const r of rounds) {
      for (const m of r.moves) {
        const load = m.loadOnSource ?? m.load;
        if (!known.has(m.vm) && load !== undefined && nodeIds.has(m.from))
          known.set(m.vm, { node: m.from, load });
      }
    }
    const used = new Map<string, number>();
    for (const [id, k] of known) {
      const have = used.get(k.node) ?? 0;
      const cap = first.nodes.find((n) => n.id === k.node)?.load ?? 0;
      if (have + k.load > cap + 1e-9) continue;
      used.set(k.node, have + k.load);
      vms.push(vm(id, k.node, k.load));
    }
    const sizes = [...known.values()].map((k) => k.load).sort((a, b) => a - b);
    const meanLoad = first.nodes.reduce((s, n) => s + n.load, 0) / first.nodes.length;
    const chunk = sizes.length ? (sizes[sizes.length >> 1] as number) : Math.max(meanLoad / 10, 1e-6);
    let filler = 0;
    for (const n of first.nodes) {
      let rest = n.load - (used.get(n.id) ?? 0);
      while (rest > 1e-9) {
        const load = Math.min(chunk, rest);
        vms.push(vm(`filler-${filler++}`, n.id, load));
        rest -= load;
      }
    }
  }
  const total = first.nodes.reduce((s, n) => s + n.load, 0);
  for (const n of nodes) if (n.capacity === 0) n.capacity = Math.max(1e-9, (1.5 * total) / nodes.length);
  return { name: `history:${source}`, nodes, vms };
}

/** Replay a history under `options` and report what the recorded runs did beside it. */
export function replayHistory(
  json: unknown,
  source: string,
  options: Omit<SimOptions, 'rounds'> & { rounds?: number },
): { result: SimResult & { recorded: Recorded }; series: SimSeries } {
  const rounds = historyRounds(json, source);
  const scenario = clusterFromHistory(rounds, source);
  const { result, series } = simulate(scenario, { ...options, rounds: options.rounds ?? rounds.length });
  const spread = (r: SimpleRound) => {
    const loads = r.nodes.map((n) => n.load);
    const mean = loads.reduce((s, l) => s + l, 0) / loads.length;
    const sd = Math.sqrt(loads.reduce((s, l) => s + (l - mean) ** 2, 0) / loads.length);
    return { maxLoad: Math.max(...loads), cv: mean > 0 ? sd / mean : 0 };
  };
  const recorded: Recorded = {
    rounds: rounds.length,
    migrations: rounds.reduce((s, r) => s + r.moves.length, 0),
    initial: spread(rounds[0] as SimpleRound),
    final: spread(rounds[rounds.length - 1] as SimpleRound),
  };
  return { result: { ...result, recorded }, series };
}
