// Block 58: does one load exceed another enough to act on?
import type { BalancingConfig } from './types.ts';

/**
 * True when `a` exceeds `b`: numerically greater, by at least `thresholdFactor` times and by at
 * least `margin` load units (factor 1 and margin 0 give the patent's plain comparison).
 */
export function exceeds(
  a: number,
  b: number,
  config: Pick<BalancingConfig, 'thresholdFactor' | 'margin'>,
): boolean {
  return a > b && a >= b * config.thresholdFactor && a - b >= config.margin;
}
