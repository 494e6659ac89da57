// The balancing domain's public API: pure functions over plain data, RNG passed in.
export { balancingConfigSchema, DEFAULT_BALANCING_CONFIG, resolveBalancingConfig } from './config.ts';
export {
  cooldownAfterMove,
  type Exclusion,
  excludedBy,
  mayEnter,
  mayLeave,
  type TakerState,
} from './constraints.ts';
export { decideRound } from './decide.ts';
export { exceeds } from './exceeds.ts';
export { CPU_ONLY_WEIGHTS, nodeLoad, vmLoad } from './load.ts';
export { type Pair, type PairingNode, pairNodes } from './pairing.ts';
export { createRng, randomInt, shuffled } from './rng.ts';
export { type Candidate, type ExchangeState, improves, searchLoad, selectVm } from './selection.ts';
export { imbalance } from './stats.ts';
export * from './types.ts';
