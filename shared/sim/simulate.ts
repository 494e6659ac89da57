// `seesaw simulate` on a scenario: Seesaw (the very decideRound the balancer runs), the greedy
// baseline and no balancing, round by round on the same in-memory cluster, from the same seed.
import { decideRound } from '../domain/decide.ts';
import { createRng, randomInt } from '../domain/rng.ts';
import { nodesInShard } from '../domain/shards.ts';
import type { Move, NodeInfo, Rng, RoundInput, VmInfo } from '../domain/types.ts';
import { bytesOf, cloneVms, lowerBound, nodeLoads } from './cluster.ts';
import { greedyRound, greedyState } from './greedy.ts';
import { lowNodeUtilizationRound, proxlbRound } from './peers.ts';
import { LoadTracker } from './tracker.ts';
import type { Scenario, SimMove, SimOptions, SimResult, SimSeries, StrategyResult } from './types.ts';

type Strategy = 'seesaw' | Peer | 'none';

/** The centralised baselines, each one round function over the same placement state. */
export const PEERS = {
  greedy: greedyRound,
  lowNodeUtilization: lowNodeUtilizationRound,
  proxlb: proxlbRound,
} as const;
export type Peer = keyof typeof PEERS;

/** Run a scenario under Seesaw and both baselines; deterministic for a given seed. */
export function simulate(scenario: Scenario, options: SimOptions): { result: SimResult; series: SimSeries } {
  const seesaw = runStrategy('seesaw', scenario, options);
  const greedy = options.greedy === false ? skipped(seesaw.result) : runStrategy('greedy', scenario, options);
  const none = runStrategy('none', scenario, options);
  const lnu = runStrategy('lowNodeUtilization', scenario, options);
  const proxlb = runStrategy('proxlb', scenario, options);
  const head = {
    scenario: scenario.name,
    nodes: scenario.nodes.length,
    vms: scenario.vms.length,
    rounds: options.rounds,
    lowerBound: lowerBound(scenario.nodes, scenario.vms),
  };
  return simOutcome(head, { seesaw, greedy, none, lowNodeUtilization: lnu, proxlb });
}

/** Every strategy's run as one result (Seesaw's figures on top, the others as baselines) and a series each. */
export function simOutcome(
  head: Pick<SimResult, 'scenario' | 'nodes' | 'vms' | 'rounds' | 'lowerBound'>,
  runs: Record<'seesaw' | 'none' | Peer, Omit<StrategyRun, 'moves'> & Partial<Pick<StrategyRun, 'moves'>>>,
): { result: SimResult; series: SimSeries } {
  const { seesaw, greedy, none, lowNodeUtilization, proxlb } = runs;
  const result: SimResult = {
    ...head,
    ...seesaw.result,
    moves: seesaw.moves ?? [],
    baselines: {
      greedy: greedy.result,
      none: none.result,
      lowNodeUtilization: lowNodeUtilization.result,
      proxlb: proxlb.result,
    },
  };
  return {
    result,
    series: {
      seesaw: seesaw.points,
      greedy: greedy.points,
      none: none.points,
      lowNodeUtilization: lowNodeUtilization.points,
      proxlb: proxlb.points,
    },
  };
}

interface StrategyRun {
  result: StrategyResult;
  moves: SimMove[];
  points: SimSeries['seesaw'];
}

function skipped(like: StrategyResult): StrategyRun {
  return {
    result: {
      initial: like.initial,
      final: like.initial,
      migrations: 0,
      bytesMoved: 0,
      roundsToCv: { '0.10': null, '0.05': null },
      migrationsToCv: { '0.10': null, '0.05': null },
    },
    moves: [],
    points: [],
  };
}

function runStrategy(strategy: Strategy, scenario: Scenario, options: SimOptions): StrategyRun {
  const { nodes } = scenario;
  let vms = cloneVms(scenario.vms);
  const decisions = createRng(options.seed);
  // Churn draws from its own stream so every strategy sees the same arrivals and departures.
  const churnRng = createRng((options.seed ^ 0x9e3779b9) >>> 0);
  const tracker = new LoadTracker(nodes, nodeLoads(nodes, vms));
  const initial = { maxLoad: tracker.maxLoad(), cv: tracker.cv() };
  tracker.endRound();
  const moves: SimMove[] = [];
  const byId = new Map(vms.map((v) => [v.id, v]));
  const peer = strategy === 'seesaw' || strategy === 'none' ? undefined : PEERS[strategy];
  let greedy = peer ? greedyState(nodes, vms) : undefined;
  const memory: RoundMemory = {};
  let nextId = 0;
  for (let round = 1; round <= options.rounds; round++) {
    tracker.round = round;
    const now = round * options.intervalMs;
    if (scenario.churn) {
      vms = churn(vms, nodes, scenario.churn, churnRng, () => `churn-${nextId++}`);
      byId.clear();
      for (const v of vms) byId.set(v.id, v);
      tracker.setLoads(nodeLoads(nodes, vms));
      if (greedy) greedy = greedyState(nodes, vms);
    }
    if (strategy === 'seesaw') {
      for (const m of seesawRound(nodes, vms, round, now, options, decisions, memory)) {
        const vm = byId.get(m.vm) as VmInfo;
        tracker.move(m.from, m.to, m.loadOnSource, m.loadOnTarget, bytesOf(vm));
        vm.node = m.to;
        vm.cooldownUntil = now + options.config.cooldownMs;
        moves.push({ round, vm: m.vm, from: m.from, to: m.to });
      }
    } else if (greedy && peer) {
      peer(greedy, tracker.loads, options.config.maxMigrationsPerCluster, now, (m) =>
        tracker.moved(m.from, m.to, m.loadOnSource, m.loadOnTarget, m.bytes),
      );
    }
    tracker.endRound();
  }
  return { result: tracker.summary(initial), moves, points: tracker.points };
}

/** What one round leaves the next: the loads it expected (the auto trigger measures noise against them). */
export interface RoundMemory {
  expected?: Record<string, number>;
}

/** One Seesaw round, split into shards the way the scheduled balancer splits it. */
export function seesawRound(
  nodes: readonly NodeInfo[],
  vms: readonly VmInfo[],
  round: number,
  now: number,
  options: Pick<SimOptions, 'config'>,
  rng: Rng,
  memory: RoundMemory = {},
): Move[] {
  const shards = options.config.shards;
  const previous = memory.expected;
  const expected: Record<string, number> = {};
  const decide = (input: RoundInput) => {
    const d = decideRound(previous ? { ...input, expected: previous } : input, options.config, rng);
    Object.assign(expected, d.expected);
    return d.moves;
  };
  if (shards <= 1) {
    const moves = decide({ nodes: [...nodes], vms: [...vms], round, now });
    memory.expected = expected;
    return moves;
  }
  const ids = nodes.map((n) => n.id);
  const byNode = new Map<string, VmInfo[]>();
  for (const v of vms) {
    const list = byNode.get(v.node);
    if (list) list.push(v);
    else byNode.set(v.node, [v]);
  }
  const nodeById = new Map(nodes.map((n) => [n.id, n]));
  const moves: Move[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const inShard = nodesInShard(ids, round, shard, shards);
    const shardNodes = inShard.map((id) => nodeById.get(id) as NodeInfo);
    const shardVms = inShard.flatMap((id) => byNode.get(id) ?? []);
    moves.push(...decide({ nodes: shardNodes, vms: shardVms, round, now }));
  }
  memory.expected = expected;
  return moves;
}

/** VMs leave at random and new ones arrive on random nodes. */
function churn(
  vms: VmInfo[],
  nodes: readonly NodeInfo[],
  spec: NonNullable<Scenario['churn']>,
  rng: Rng,
  newId: () => string,
): VmInfo[] {
  const out = vms.slice();
  for (let i = 0; i < spec.leave && out.length > 0; i++) out.splice(randomInt(rng, out.length), 1);
  const open = nodes.filter((n) => !n.draining);
  for (let i = 0; i < spec.arrive && open.length > 0; i++) {
    const node = open[randomInt(rng, open.length)] as NodeInfo;
    const cpu = spec.load.min + rng.next() * (spec.load.max - spec.load.min);
    out.push({
      id: newId(),
      node: node.id,
      factors: { cpu, io: 0, mem: 0.25 },
      memPages: 4096,
      pinned: false,
    });
  }
  return out;
}
