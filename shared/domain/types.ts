import type { DriverName } from './guests.ts';
// The plain data the balancing method works on, named as in the patent.
// Everything here is data: no methods, no I/O. Policies are functions over it.
import type { TriggerChoice } from './trigger.ts';
import type { VmTable } from './vm-table.ts';

/** Per-VM resource use measured by the VM kernel over one period (Fig. 4 factors). */
export interface LoadFactors {
  /** CPU time used, in cores (1.0 = one core busy for the whole period). */
  cpu: number;
  /** I/O activity, in thousands of virtual-disk operations per second. */
  io: number;
  /** Memory occupied, in GiB of resident guest pages. */
  mem: number;
  /** Paging: thousands of pages dirtied per second (optional factor). */
  paging?: number;
  /** Network: MiB sent per second (optional factor). */
  net?: number;
}

/** The node's Fig. 4 weights; a faster CPU gets a smaller `cpu`, an expensive node larger ones. */
export interface Weights {
  cpu: number;
  io: number;
  mem: number;
  paging?: number;
  net?: number;
}

export const FACTOR_NAMES = ['cpu', 'io', 'mem', 'paging', 'net'] as const;

/** A node as the balancer sees it. */
export interface NodeInfo {
  id: string;
  weights: Weights;
  /** Load units the node serves per period; used for headroom and by the simulator. */
  capacity: number;
  /** Guest memory the node can hold, in 64 KiB pages. */
  memCapacityPages: number;
  /** A draining node gives all its VMs away and takes none. */
  draining: boolean;
  /** Administrator override of the node's load (block 50: "the load may be set manually"). */
  loadOverride?: number;
  /** The VM drivers the node offers (default: wasm only). */
  drivers?: readonly DriverName[];
}

/** A VM as the balancer sees it: the schedule entry of Fig. 5 plus placement constraints. */
export interface VmInfo {
  id: string;
  /** The node that owns it now. */
  node: string;
  factors: LoadFactors;
  /** Programmed target load (Fig. 5, Fig. 7), in load units. */
  targetLoad?: number;
  /** Linear memory size, in 64 KiB pages. */
  memPages: number;
  /** Pinned VMs never move. */
  pinned: boolean;
  /** Anti-affinity group: two VMs of one group never share a node. */
  group?: string;
  /** Epoch ms before which the VM must not move again (cooldown after a move). */
  cooldownUntil?: number;
  /** True while a migration or other state change is in flight; such VMs are not candidates. */
  busy?: boolean;
  /** The driver the VM needs, when not the default wasm kernel: only nodes offering it may take it. */
  driver?: DriverName;
}

export type PairingPolicy = 'random' | 'round-robin' | 'sender' | 'receiver' | 'symmetric' | 'spread';
export type SelectionRule = 'best-balance' | 'half-diff' | 'target' | 'largest';

/** The cluster's balancing configuration (one item in the table, editable through the API). */
export interface BalancingConfig {
  pairing: PairingPolicy;
  /** Combine the pairing policy with random partners for the nodes it leaves unpaired. */
  withRandom: boolean;
  selection: SelectionRule;
  /** One load exceeds another if it is at least `thresholdFactor` times it ... */
  thresholdFactor: number;
  /** ... and at least `margin` load units above it. */
  margin: number;
  /** Sender-initiated pairing starts from nodes above this load (fraction of capacity). */
  highThreshold: number;
  /** Receiver-initiated pairing starts from nodes below this load (fraction of capacity). */
  lowThreshold: number;
  /** Whether the less-loaded side of a pair may pull (Fig. 3 blocks 80/82) or only the requester gives. */
  direction: 'both' | 'push-only';
  /** Allow several VMs per exchange when one is not enough. */
  multiVm: boolean;
  maxMovesPerExchange: number;
  /** Per-VM quiet period after a move. */
  cooldownMs: number;
  maxMigrationsPerNode: number;
  maxMigrationsPerCluster: number;
  /** Load reports older than this keep a node out of the round. */
  reportStaleMs: number;
  shards: number;
  /**
   * What an exchange aims for: `pair` evens the two loads (the patent's half difference); `mean` stops
   * each side at the shard's mean load, so load never overshoots and sloshes back. Absent means `pair`;
   * DEFAULT_BALANCING_CONFIG sets `mean`.
   */
  aim?: 'pair' | 'mean';
  /**
   * When a pair acts: `difference` whenever one load exceeds the other; `headroom` only when the giver
   * is above `highThreshold` of its capacity (and the taker is kept at or below it); `auto` picks one
   * of the two each round from the measured spread and noise (see trigger.ts). Absent means
   * `difference`; DEFAULT_BALANCING_CONFIG sets `auto`.
   */
  trigger?: 'difference' | 'headroom' | 'auto';
}

/** One VM moving from one node to another, with the loads the move is predicted to change. */
export interface Move {
  vm: string;
  from: string;
  to: string;
  /** The VM's load under the source's weights (what the source sheds). */
  loadOnSource: number;
  /** The VM's load under the target's weights (what the target gains). */
  loadOnTarget: number;
}

/** Why a pair did or did not exchange; `code` is stable for logs and tests, `detail` is for people. */
export interface Reason {
  code:
    | 'moved'
    | 'balanced'
    | 'below-threshold'
    | 'no-candidate'
    | 'no-gain'
    | 'constraint'
    | 'draining'
    | 'push-only'
    | 'limit';
  detail: string;
}

export interface PairDecision {
  /** The requesting node (block 50) and the selected node (block 52). */
  requester: string;
  selected: string;
  loads: { requester: number; selected: number };
  moves: Move[];
  reason: Reason;
  /** Loads expected after the moves. */
  predicted: { requester: number; selected: number };
}

export interface Imbalance {
  /** Coefficient of variation of node loads (stddev / mean); 0 when perfectly even. */
  cv: number;
  /** Largest node load over the mean node load; 1 when perfectly even. */
  maxOverMean: number;
  maxLoad: number;
  mean: number;
}

export interface RoundInput {
  nodes: NodeInfo[];
  vms: VmInfo[];
  /** Monotonic round number; round-robin pairing and shard hashing use it. */
  round: number;
  /** Epoch ms; cooldowns compare against it. */
  now: number;
  /** Migrations already in flight per node, counted against the limits. */
  inFlight?: Record<string, number>;
  /** The loads the previous round expected each node to have after its moves (`RoundDecision.expected`). */
  expected?: Record<string, number>;
  /**
   * What the input's builder already computed, so the round need not walk the VMs again: each VM's
   * node (its position in `nodes`, -1 for none) and its load under that node's weights (vmLoad's
   * value). Used only when both are as long as `vms`; the round computes them itself otherwise.
   */
  vmLoads?: { node: ArrayLike<number>; load: ArrayLike<number> };
  /**
   * The same VMs in columns (see vm-table.ts), when the input's builder has them: the round then reads
   * them instead of `vms`, and `vmLoads` is not needed.
   */
  table?: VmTable;
}

export interface RoundDecision {
  pairs: PairDecision[];
  moves: Move[];
  /** Nodes left out of the round and why. */
  skipped: { node: string; reason: string }[];
  /** Imbalance of the non-draining nodes before and after the moves. */
  before: Imbalance;
  after: Imbalance;
  /** Every node's load once the moves are made: the next round's `expected`. */
  expected?: Record<string, number>;
  /** The trigger the round used and what `auto` measured to choose it. */
  trigger?: TriggerChoice;
}

/** A source of uniform numbers in [0, 1); seeded in tests and the simulator. */
export interface Rng {
  next(): number;
}
