// The simulator's data: scenarios in, results out. The result fields follow `seesaw simulate --json`.
import type { BalancingConfig, NodeInfo, VmInfo } from '../domain/types.ts';

/** VMs arriving and leaving every round (the churn scenario, or a scenario file's `churn`). */
export interface Churn {
  arrive: number;
  leave: number;
  /** Arriving VMs get a CPU load drawn uniformly from [min, max]. */
  load: { min: number; max: number };
}

/** An in-memory cluster to balance. */
export interface Scenario {
  name: string;
  nodes: NodeInfo[];
  vms: VmInfo[];
  config?: Partial<BalancingConfig>;
  churn?: Churn;
}

/** The CV levels convergence is measured at, as the JSON keys name them. */
export const CV_LEVELS = ['0.10', '0.05'] as const;
export type CvLevel = (typeof CV_LEVELS)[number];

/** One round of one strategy, for plots: spread of node loads and migrations so far. */
export interface RoundPoint {
  round: number;
  cv: number;
  minLoad: number;
  maxLoad: number;
  mean: number;
  migrations: number;
}

/** What one strategy (Seesaw, greedy, none) did over the run. */
export interface StrategyResult {
  initial: { maxLoad: number; cv: number };
  final: { maxLoad: number; cv: number };
  migrations: number;
  bytesMoved: number;
  /** The round in which the CV first fell to the level (0: already there; null: never). */
  roundsToCv: Record<CvLevel, number | null>;
  /** Migrations made up to and including the move that first brought the CV to the level. */
  migrationsToCv: Record<CvLevel, number | null>;
  /** Trace replays only: node-ticks whose demand exceeded capacity, and the demand not served. */
  overloadNodeTicks?: number;
  steal?: number;
}

export interface SimMove {
  round: number;
  vm: string;
  from: string;
  to: string;
}

/** The `--json` output of `seesaw simulate`. */
export interface SimResult extends StrategyResult {
  scenario: string;
  nodes: number;
  vms: number;
  rounds: number;
  lowerBound: number;
  moves: SimMove[];
  /** Peers on the same cluster and loads; `lowNodeUtilization` and `proxlb` are absent in history replays. */
  baselines: {
    greedy: StrategyResult;
    none: StrategyResult;
    lowNodeUtilization?: StrategyResult;
    proxlb?: StrategyResult;
  };
}

/** A run's per-round series, for `--plot` (not part of the JSON). */
export interface SimSeries {
  seesaw: RoundPoint[];
  greedy: RoundPoint[];
  none: RoundPoint[];
  lowNodeUtilization?: RoundPoint[];
  proxlb?: RoundPoint[];
}

export interface SimOptions {
  rounds: number;
  seed: number;
  config: BalancingConfig;
  /** Simulated time between rounds; cooldowns are measured in it. */
  intervalMs: number;
  /** Skip the greedy baseline (it is slow on very large clusters). */
  greedy?: boolean;
}
