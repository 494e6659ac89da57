// What `seesaw simulate` does once its flags are parsed: pick the input (scenario, trace or
// history), lay the config over the defaults, and run. The bench calls this too.
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_BALANCING_CONFIG, resolveBalancingConfig } from '../domain/config.ts';
import { createRng } from '../domain/rng.ts';
import type { BalancingConfig } from '../domain/types.ts';
import { readScenarioFile, readTraceDir } from './files.ts';
import { replayHistory } from './history.ts';
import { BUILTIN_SCENARIOS, builtinScenario } from './scenarios.ts';
import { simulate } from './simulate.ts';
import { parseEstimator, replayTraces } from './trace.ts';
import type { RoundPoint, SimResult, SimSeries } from './types.ts';

export interface SimulateArgs {
  scenario?: string;
  trace?: string;
  history?: string;
  nodes?: number;
  vms?: number;
  capacity?: number;
  rounds?: number;
  seed: number;
  /** Config flags (policy, selection, threshold…), laid over the scenario's config and the defaults. */
  config: Partial<BalancingConfig>;
  estimate?: string;
  greedy?: boolean;
  intervalMs?: number;
}

export const DEFAULT_ROUNDS = 50;

/** Run the simulation the arguments describe. */
export function runSimulation(args: SimulateArgs): { result: SimResult; series: SimSeries } {
  const inputs = [args.scenario, args.trace, args.history].filter((x) => x !== undefined);
  if (inputs.length > 1) throw new Error('give one of --scenario, --trace and --history');
  const configOf = (base: Partial<BalancingConfig> = {}) =>
    resolveBalancingConfig(args.config, resolveBalancingConfig(base, DEFAULT_BALANCING_CONFIG));
  if (args.trace !== undefined) {
    if (args.nodes === undefined || args.capacity === undefined) {
      throw new Error('--trace needs --nodes N and --capacity C');
    }
    return replayTraces(readTraceDir(args.trace), {
      nodes: args.nodes,
      capacity: args.capacity,
      seed: args.seed,
      config: configOf(),
      estimator: parseEstimator(args.estimate ?? 'last'),
      ...(args.rounds !== undefined ? { ticks: args.rounds } : {}),
      ...(args.greedy === false ? { greedy: false } : {}),
    });
  }
  const intervalMs = args.intervalMs ?? 60_000;
  if (args.history !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(args.history, 'utf8'));
    } catch (error) {
      throw new Error(`cannot read history ${args.history}: ${(error as Error).message}`);
    }
    return replayHistory(json, args.history, {
      seed: args.seed,
      config: configOf(),
      intervalMs,
      ...(args.rounds !== undefined ? { rounds: args.rounds } : {}),
      ...(args.greedy === false ? { greedy: false } : {}),
    });
  }
  const name = args.scenario ?? 'uniform';
  const scenario =
    name in BUILTIN_SCENARIOS
      ? builtinScenario(name, createRng(args.seed), {
          ...(args.nodes !== undefined ? { nodes: args.nodes } : {}),
          ...(args.vms !== undefined ? { vms: args.vms } : {}),
        })
      : existsSync(name)
        ? readScenarioFile(name)
        : fail(
            `unknown scenario "${name}": not a built-in (${Object.keys(BUILTIN_SCENARIOS).join(', ')}) and no such file`,
          );
  return simulate(scenario, {
    rounds: args.rounds ?? DEFAULT_ROUNDS,
    seed: args.seed,
    config: configOf(scenario.config),
    intervalMs,
    ...(args.greedy === false ? { greedy: false } : {}),
  });
}

function fail(message: string): never {
  throw new Error(message);
}

/** One strategy's convergence per round, as `simulate --json` prints it. */
export interface SeriesPoint {
  round: number;
  cv: number;
  /** The most loaded node over the lower bound on the maximum. */
  maxOverLowerBound: number;
  /** Migrations so far. */
  migrations: number;
}

/** The per-round series of every strategy that ran, for `--json`. */
export function seriesJson(series: SimSeries, lowerBound: number): Record<string, SeriesPoint[]> {
  const round4 = (x: number) => Math.round(x * 1e4) / 1e4;
  const out: Record<string, SeriesPoint[]> = {};
  for (const [name, points] of Object.entries(series) as [string, RoundPoint[] | undefined][]) {
    if (!points || points.length === 0) continue;
    out[name] = points.map((p) => ({
      round: p.round,
      cv: round4(p.cv),
      maxOverLowerBound: lowerBound > 0 ? round4(p.maxLoad / lowerBound) : 1,
      migrations: p.migrations,
    }));
  }
  return out;
}
