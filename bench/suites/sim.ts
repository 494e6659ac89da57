// Simulator figures against the targets: the skewed cluster (CV, max over the lower bound,
// migrations against greedy, for several policies), the PlanetLab replay (overload against
// migrations, for several policies and estimators), and decideRound's time on 10,000 × 100,000.
import { existsSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { decideRound } from '../../shared/domain/decide.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { BalancingConfig } from '../../shared/domain/types.ts';
import { readTraceDir } from '../../shared/sim/files.ts';
import { builtinScenario } from '../../shared/sim/scenarios.ts';
import { simulate } from '../../shared/sim/simulate.ts';
import { type Estimator, formatEstimator, parseEstimator, replayTraces } from '../../shared/sim/trace.ts';
import type { RoundPoint, SimResult, StrategyResult } from '../../shared/sim/types.ts';
import { type BenchContext, REPO_ROOT } from '../index.ts';

export const name = 'sim';

const SEED = 1;

export async function run(ctx: BenchContext): Promise<Record<string, unknown>> {
  return {
    defaults: defaultsFigures(ctx),
    skewed: skewedFigures(ctx),
    planetlab: planetlabFigures(ctx),
    decideRound: decideFigures(ctx),
  };
}

const r3 = (x: number | null | undefined) =>
  x === null || x === undefined ? null : Math.round(x * 1000) / 1000;
const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
const cell = (x: number | null | undefined, w: number) => String(x ?? '—').padStart(w);
const config = (over: Partial<BalancingConfig>): BalancingConfig => ({
  ...DEFAULT_BALANCING_CONFIG,
  ...over,
});

function at(points: RoundPoint[], round: number): RoundPoint | undefined {
  return points.find((p) => p.round === round) ?? points[points.length - 1];
}

/** Skewed 1,000 × 10,000: targets CV < 0.05 within 20 rounds, max ≤ 1.05 × LB, ≤ 1.2 × greedy's migrations. */
function skewedFigures(ctx: BenchContext) {
  const size = ctx.quick ? { nodes: 200, vms: 2000 } : { nodes: 1000, vms: 10_000 };
  const rounds = 50;
  const scenario = builtinScenario('skewed', createRng(SEED), size);
  const policies: [string, Partial<BalancingConfig>][] = [
    ['default (spread, mean aim, best-balance)', {}],
    [
      'random + half-diff, pair aim (the patent plain)',
      { pairing: 'random', selection: 'half-diff', aim: 'pair' },
    ],
    ['random, mean aim', { pairing: 'random', aim: 'mean' }],
    ['round-robin, mean aim', { pairing: 'round-robin', aim: 'mean' }],
    ['spread, pair aim', { pairing: 'spread', aim: 'pair' }],
  ];
  const tried = ctx.quick ? policies.slice(0, 2) : policies;
  ctx.log(`skewed ${size.nodes} nodes × ${size.vms} VMs, identical weights, ${rounds} rounds, seed ${SEED}`);
  let greedy: { result: StrategyResult; points: RoundPoint[] } | undefined;
  let lowerBound = 0;
  const rows: Record<string, unknown>[] = [];
  for (const [label, over] of tried) {
    const { result, series } = simulate(scenario, {
      rounds,
      seed: SEED,
      config: config(over),
      intervalMs: 60_000,
      greedy: greedy === undefined,
    });
    lowerBound = result.lowerBound;
    if (!greedy) greedy = { result: result.baselines.greedy, points: series.greedy };
    rows.push(skewedRow(label, result, series.seesaw, greedy.result));
  }
  if (!greedy) throw new Error('no policy ran');
  const none = simulate(scenario, {
    rounds: 1,
    seed: SEED,
    config: config({}),
    intervalMs: 60_000,
    greedy: false,
  });
  rows.push(
    skewedRow(
      'greedy (DRS-like baseline)',
      { ...none.result, ...greedy.result } as SimResult,
      greedy.points,
      greedy.result,
    ),
  );
  const header = `${'policy'.padEnd(48)} ${'CV@10'.padStart(7)} ${'CV@50'.padStart(7)} ${'max/LB@10'.padStart(9)} ${'max/LB@20'.padStart(9)} ${'max/LB@50'.padStart(9)} ${'rnds→.05'.padStart(8)} ${'mig→.05'.padStart(8)} ${'×greedy'.padStart(7)} ${'mig@50'.padStart(7)} ${'GiB@50'.padStart(7)}`;
  ctx.log(header);
  for (const r of rows) {
    ctx.log(
      `${String(r.policy).padEnd(48)} ${cell(r.cvAt10 as number, 7)} ${cell(r.cvAt50 as number, 7)} ${cell(r.maxOverLbAt10 as number, 9)} ${cell(r.maxOverLbAt20 as number, 9)} ${cell(r.maxOverLbAt50 as number, 9)} ${cell(r.roundsToCv005 as number, 8)} ${cell(r.migrationsToCv005 as number, 8)} ${cell(r.migrationsVsGreedy as number, 7)} ${cell(r.migrationsAt50 as number, 7)} ${cell(r.gibMovedAt50 as number, 7)}`,
    );
  }
  ctx.log(
    `initial CV ${r3(greedy.result.initial.cv)}, initial max/LB ${r3(greedy.result.initial.maxLoad / lowerBound)}, lower bound ${r3(lowerBound)}`,
  );
  const best = rows[0] as Record<string, number | null | string>;
  const targets = {
    'CV < 0.05 within 20 rounds': {
      value: best.roundsToCv005,
      met: best.roundsToCv005 !== null && (best.roundsToCv005 as number) <= 20,
    },
    'max ≤ 1.05 × lower bound (after 50 rounds)': {
      value: best.maxOverLbAt50,
      met: (best.maxOverLbAt50 as number) <= 1.05,
    },
    'max ≤ 1.05 × lower bound (after 20 rounds)': {
      value: best.maxOverLbAt20,
      met: (best.maxOverLbAt20 as number) <= 1.05,
    },
    'migrations to CV 0.05 ≤ 1.2 × greedy': {
      value: best.migrationsVsGreedy,
      met: best.migrationsVsGreedy !== null && (best.migrationsVsGreedy as number) <= 1.2,
    },
  };
  for (const [t, v] of Object.entries(targets))
    ctx.log(`target ${t}: ${v.value ?? '—'} ${v.met ? 'MET' : 'NOT MET'}`);
  return { nodes: size.nodes, vms: size.vms, rounds, lowerBound: r3(lowerBound), policies: rows, targets };
}

function skewedRow(policy: string, result: SimResult, points: RoundPoint[], greedy: StrategyResult) {
  const lb = result.lowerBound;
  const p10 = at(points, 10);
  const p20 = at(points, 20);
  const p50 = at(points, 50);
  const mig = result.migrationsToCv['0.05'];
  const greedyMig = greedy.migrationsToCv['0.05'];
  return {
    policy,
    cvAt10: r3(p10?.cv),
    cvAt50: r3(p50?.cv),
    maxOverLbAt10: r3(p10 ? p10.maxLoad / lb : null),
    maxOverLbAt20: r3(p20 ? p20.maxLoad / lb : null),
    maxOverLbAt50: r3(p50 ? p50.maxLoad / lb : null),
    roundsToCv005: result.roundsToCv['0.05'],
    migrationsToCv005: mig,
    migrationsVsGreedy: mig !== null && greedyMig ? r3(mig / greedyMig) : null,
    migrationsAt50: p50?.migrations ?? null,
    gibMovedAt50: r3(result.bytesMoved / 2 ** 30),
  };
}

/** The PlanetLab day on 140 nodes of capacity 1.5: ≥ 3× fewer overload node-ticks than none, ≤ ½ greedy's migrations. */
function planetlabFigures(ctx: BenchContext) {
  const full = join(planetlabRoot(), '20110303');
  const subset = join(REPO_ROOT, 'test', 'data', 'planetlab');
  let dir = full;
  if (!existsSync(full)) {
    ctx.log(
      `PlanetLab traces not found at ${full} (a checkout beside ../shared/data); using the test subset in ${subset}`,
    );
    dir = subset;
  }
  const traces = readTraceDir(dir);
  const nodes = dir === full ? 140 : Math.max(2, Math.round((traces.vms.length * 140) / 1052));
  const capacity = 1.5;
  const ticks = ctx.quick ? 96 : undefined;
  const policies: [string, Partial<BalancingConfig>, string][] = [
    ['default, last tick', {}, 'last'],
    ['default, ewma:0.3', {}, 'ewma:0.3'],
    ['headroom 0.9, last tick', { trigger: 'headroom', highThreshold: 0.9 }, 'last'],
    ['headroom 0.8, peak:6', { trigger: 'headroom', highThreshold: 0.8 }, 'peak:6'],
    ['headroom 0.8, ewma:0.2', { trigger: 'headroom', highThreshold: 0.8 }, 'ewma:0.2'],
    ['headroom 0.9, ewma:0.3 (recommended)', { trigger: 'headroom', highThreshold: 0.9 }, 'ewma:0.3'],
  ];
  const tried = ctx.quick ? policies.slice(-2) : policies;
  ctx.log(
    `PlanetLab ${traces.name}: ${traces.vms.length} VMs on ${nodes} nodes of capacity ${capacity}, ${ticks ?? 'all'} ticks`,
  );
  const greedyByEstimator = new Map<string, StrategyResult>();
  let none: StrategyResult | undefined;
  const rows: Record<string, unknown>[] = [];
  for (const [label, over, est] of tried) {
    const estimator: Estimator = parseEstimator(est);
    const needGreedy = !greedyByEstimator.has(est);
    const { result } = replayTraces(traces, {
      nodes,
      capacity,
      seed: SEED,
      config: config(over),
      estimator,
      ...(ticks ? { ticks } : {}),
      greedy: needGreedy,
    });
    if (needGreedy) greedyByEstimator.set(est, result.baselines.greedy);
    none = result.baselines.none;
    const greedy = greedyByEstimator.get(est) as StrategyResult;
    rows.push({
      policy: label,
      estimator: formatEstimator(estimator),
      overloadNodeTicks: result.overloadNodeTicks,
      steal: r3(result.steal),
      migrations: result.migrations,
      noneOverOverload: r3((none.overloadNodeTicks ?? 0) / Math.max(1, result.overloadNodeTicks ?? 0)),
      migrationsVsGreedy: r3(result.migrations / Math.max(1, greedy.migrations)),
      greedyOverload: greedy.overloadNodeTicks,
      greedyMigrations: greedy.migrations,
    });
  }
  if (!none) throw new Error('no policy ran');
  ctx.log(
    `${'policy'.padEnd(38)} ${'overload'.padStart(8)} ${'steal'.padStart(8)} ${'migr.'.padStart(6)} ${'none/x'.padStart(7)} ${'×greedy'.padStart(7)} | greedy (same estimate): ${'overload'.padStart(8)} ${'migr.'.padStart(6)}`,
  );
  for (const r of rows) {
    ctx.log(
      `${String(r.policy).padEnd(38)} ${cell(r.overloadNodeTicks as number, 8)} ${cell(r.steal as number, 8)} ${cell(r.migrations as number, 6)} ${cell(r.noneOverOverload as number, 7)} ${cell(r.migrationsVsGreedy as number, 7)} | ${''.padStart(23)} ${cell(r.greedyOverload as number, 8)} ${cell(r.greedyMigrations as number, 6)}`,
    );
  }
  ctx.log(`no balancing: ${none.overloadNodeTicks} overload node-ticks, steal ${r3(none.steal)}`);
  const best = rows[rows.length - 1] as Record<string, number>;
  const targets = {
    '≥ 3× fewer overload node-ticks than none': {
      value: best.noneOverOverload,
      met: (best.noneOverOverload ?? 0) >= 3,
    },
    '≤ 0.5 × greedy migrations': {
      value: best.migrationsVsGreedy,
      met: (best.migrationsVsGreedy ?? 1) <= 0.5,
    },
    'overload ≤ greedy (aim)': {
      value: `${best.overloadNodeTicks} vs ${best.greedyOverload}`,
      met: (best.overloadNodeTicks ?? 0) <= (best.greedyOverload ?? 0),
    },
  };
  for (const [t, v] of Object.entries(targets))
    ctx.log(`target ${t}: ${v.value} ${v.met ? 'MET' : 'NOT MET'}`);
  return {
    traces: traces.vms.length,
    nodes,
    capacity,
    none: { overloadNodeTicks: none.overloadNodeTicks, steal: r3(none.steal) },
    policies: rows,
    targets,
  };
}

/** The PlanetLab days: beside the checkout (../shared/data/planetlab), or SEESAW_PLANETLAB_DIR (a worktree). */
function planetlabRoot(): string {
  return process.env.SEESAW_PLANETLAB_DIR ?? join(REPO_ROOT, '..', 'shared', 'data', 'planetlab');
}

/**
 * Where the defaults were tuned; every other day and seed is held out. The unseen skewed seeds are
 * run by the bench only, once after each policy change, until `fitTaker` and `byValue`, whose
 * diagnosis looked at them (docs/balancer.md); fresh seeds were that change's unseen check, and
 * the next one's (fillToRest, oneBeforeSwap: seeds 9001–9040; it ran these four as held out).
 */
const TUNED = { days: ['20110303'], traceSeeds: [1, 2], skewedSeeds: [1, 2, 3] };
const UNSEEN_SKEWED_SEEDS = [31, 57, 314, 2718];

/**
 * Issue 15's targets for DEFAULT_BALANCING_CONFIG, with no flags: every PlanetLab day at 7, 7.5 and
 * 8 VMs per node of capacity 1.5 (overload ≤ greedy's, migrations ≤ 0.1 × greedy's), and skewed
 * 1,000 × 10,000 clusters from several seeds (CV ≤ 0.05 in ≤ 8 rounds, max/LB ≤ 1.03 at round 50,
 * migrations to CV 0.05 ≤ greedy's). Peers and the lower bound side by side; tuned vs held out.
 */
function defaultsFigures(ctx: BenchContext) {
  const root = planetlabRoot();
  const days = existsSync(root) ? readdirSync(root).filter((d) => /^\d{8}$/.test(d)) : [];
  const perNode = ctx.quick ? [7.5] : [7, 7.5, 8];
  const traceSeeds = ctx.quick ? [1] : [1, 2, 3];
  const trace: Record<string, unknown>[] = [];
  ctx.log('defaults on PlanetLab (capacity 1.5): overload and migrations as ratios of greedy’s');
  ctx.log(
    `${'day'.padEnd(9)} ${'VMs/n'.padStart(5)} ${'seed'.padStart(4)} ${'set'.padEnd(8)} ${'over×g'.padStart(7)} ${'migr×g'.padStart(7)} | ${'seesaw'.padStart(11)} ${'greedy'.padStart(12)} ${'LNU'.padStart(12)} ${'ProxLB'.padStart(11)} ${'LB'.padStart(6)}`,
  );
  for (const day of days) {
    const traces = readTraceDir(join(root, day));
    for (const per of perNode) {
      const nodes = Math.floor(traces.vms.length / per);
      for (const seed of traceSeeds) {
        const { result: r } = replayTraces(traces, {
          nodes,
          capacity: 1.5,
          seed,
          config: DEFAULT_BALANCING_CONFIG,
          estimator: parseEstimator('last'),
          ...(ctx.quick ? { ticks: 96 } : {}),
        });
        const g = r.baselines.greedy;
        const set = TUNED.days.includes(day) && TUNED.traceSeeds.includes(seed) ? 'tuned' : 'held-out';
        const row = {
          day,
          vmsPerNode: per,
          nodes,
          seed,
          set,
          overloadVsGreedy: r3((r.overloadNodeTicks ?? 0) / Math.max(1, g.overloadNodeTicks ?? 0)),
          migrationsVsGreedy: r3(r.migrations / Math.max(1, g.migrations)),
          seesaw: { overloadNodeTicks: r.overloadNodeTicks, migrations: r.migrations },
          greedy: { overloadNodeTicks: g.overloadNodeTicks, migrations: g.migrations },
          lowNodeUtilization: peerFigures(r.baselines.lowNodeUtilization),
          proxlb: peerFigures(r.baselines.proxlb),
          lowerBound: r3(r.lowerBound),
        };
        row.set = set;
        trace.push(row);
        const pair = (x: { overloadNodeTicks?: number | undefined; migrations: number } | undefined) =>
          x ? `${x.overloadNodeTicks}/${x.migrations}` : '—';
        ctx.log(
          `${day.padEnd(9)} ${String(per).padStart(5)} ${String(seed).padStart(4)} ${set.padEnd(8)} ${cell(row.overloadVsGreedy, 7)} ${cell(row.migrationsVsGreedy, 7)} | ${pair(row.seesaw).padStart(11)} ${pair(row.greedy).padStart(12)} ${pair(row.lowNodeUtilization).padStart(12)} ${pair(row.proxlb).padStart(11)} ${cell(row.lowerBound, 6)}`,
        );
      }
    }
  }
  const size = ctx.quick ? { nodes: 200, vms: 2000 } : { nodes: 1000, vms: 10_000 };
  const skewedSeeds = ctx.quick ? [1, 4] : [1, 2, 3, 4, 5, 6, 7, 8, 11, 17, ...UNSEEN_SKEWED_SEEDS];
  const skewed: Record<string, unknown>[] = [];
  ctx.log(`defaults on skewed ${size.nodes} × ${size.vms}, 50 rounds`);
  ctx.log(
    `${'seed'.padStart(4)} ${'set'.padEnd(8)} ${'rounds→0.05'.padStart(11)} ${'max/LB@50'.padStart(9)} ${'migr×g'.padStart(7)} | greedy: ${'rounds'.padStart(6)} ${'max/LB'.padStart(6)} | LNU max/LB, ProxLB max/LB`,
  );
  for (const seed of skewedSeeds) {
    const scenario = builtinScenario('skewed', createRng(seed), size);
    const { result: r } = simulate(scenario, {
      rounds: 50,
      seed,
      config: DEFAULT_BALANCING_CONFIG,
      intervalMs: 60_000,
    });
    const g = r.baselines.greedy;
    const lb = r.lowerBound;
    const row = {
      seed,
      set: TUNED.skewedSeeds.includes(seed)
        ? 'tuned'
        : UNSEEN_SKEWED_SEEDS.includes(seed)
          ? 'unseen'
          : 'held-out',
      roundsToCv005: r.roundsToCv['0.05'],
      maxOverLbAt50: r3(r.final.maxLoad / lb),
      // Four decimals: a move or two over greedy's ~3,150 is 1.0003 to 1.0006, which three would hide.
      migrationsVsGreedy: r4(
        (r.migrationsToCv['0.05'] ?? Number.NaN) / (g.migrationsToCv['0.05'] ?? Number.NaN),
      ),
      migrationsToCv005: r.migrationsToCv['0.05'],
      greedy: {
        roundsToCv005: g.roundsToCv['0.05'],
        maxOverLbAt50: r3(g.final.maxLoad / lb),
        migrationsToCv005: g.migrationsToCv['0.05'],
      },
      lowNodeUtilization: { maxOverLbAt50: r3((r.baselines.lowNodeUtilization?.final.maxLoad ?? 0) / lb) },
      proxlb: { maxOverLbAt50: r3((r.baselines.proxlb?.final.maxLoad ?? 0) / lb) },
    };
    skewed.push(row);
    ctx.log(
      `${String(seed).padStart(4)} ${row.set.padEnd(8)} ${cell(row.roundsToCv005, 11)} ${cell(row.maxOverLbAt50, 9)} ${cell(row.migrationsVsGreedy, 7)} |         ${cell(row.greedy.roundsToCv005, 6)} ${cell(row.greedy.maxOverLbAt50, 6)} | ${row.lowNodeUtilization.maxOverLbAt50}, ${row.proxlb.maxOverLbAt50}`,
    );
  }
  const met = {
    trace: trace.every((t) => (t.overloadVsGreedy as number) <= 1 && (t.migrationsVsGreedy as number) <= 0.1),
    skewedRounds: skewed.every((s) => s.roundsToCv005 !== null && (s.roundsToCv005 as number) <= 8),
    skewedMaxOverLb: skewed.every((s) => (s.maxOverLbAt50 as number) <= 1.03),
    // On the counts themselves, not the rounded ratio.
    skewedMigrations: skewed.every(
      (s) =>
        s.migrationsToCv005 !== null &&
        (s.migrationsToCv005 as number) <=
          ((s.greedy as { migrationsToCv005: number | null }).migrationsToCv005 ?? 0),
    ),
  };
  for (const [k, v] of Object.entries(met)) ctx.log(`defaults target ${k}: ${v ? 'MET' : 'NOT MET'}`);
  return { tuned: TUNED, unseenSkewedSeeds: UNSEEN_SKEWED_SEEDS, trace, skewed, met };
}

function peerFigures(r: StrategyResult | undefined) {
  return r ? { overloadNodeTicks: r.overloadNodeTicks, migrations: r.migrations } : undefined;
}

/** decideRound on 10,000 nodes × 100,000 VMs (target < 200 ms). */
function decideFigures(ctx: BenchContext) {
  const size = { nodes: 10_000, vms: 100_000 };
  const scenario = builtinScenario('large', createRng(SEED), size);
  const input = { nodes: scenario.nodes, vms: scenario.vms, round: 1, now: 60_000 };
  // Warm the JIT first: the balancer's Lambda decides many rounds per container.
  for (let i = 0; i < 2; i++) decideRound(input, DEFAULT_BALANCING_CONFIG, createRng(100 + i));
  const times: number[] = [];
  const cpu: number[] = [];
  let moves = 0;
  for (let i = 0; i < (ctx.quick ? 3 : 7); i++) {
    const cpuStart = process.cpuUsage();
    const started = performance.now();
    moves = decideRound(input, DEFAULT_BALANCING_CONFIG, createRng(i)).moves.length;
    times.push(performance.now() - started);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  times.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  const median = times[times.length >> 1] as number;
  const cpuMedian = cpu[cpu.length >> 1] as number;
  const load = loadavg()[0] ?? 0;
  ctx.log(
    `decideRound ${size.nodes} × ${size.vms}: median ${median.toFixed(1)} ms wall (min ${(times[0] as number).toFixed(1)}), ${cpuMedian.toFixed(1)} ms CPU, ${moves} moves; load average ${load.toFixed(1)} on ${cpus().length} cores; target < 200 ms ${median < 200 ? 'MET' : 'NOT MET'}`,
  );
  return {
    nodes: size.nodes,
    vms: size.vms,
    medianMs: r3(median),
    minMs: r3(times[0]),
    cpuMedianMs: r3(cpuMedian),
    loadAverage: r3(load),
    moves,
    targetMs: 200,
    met: median < 200,
  };
}
