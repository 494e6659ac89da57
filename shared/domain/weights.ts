// Performance-monitor hints adjust a node's Fig. 4 weights without replacing them.
import { FACTOR_NAMES, type Weights } from './types.ts';

/** The weights a node's loads are computed with: each weight times its hint (a missing hint is 1). */
export function effectiveWeights(weights: Weights, hints: Partial<Weights> | undefined): Weights {
  if (!hints) return weights;
  const out: Weights = { ...weights };
  for (const name of FACTOR_NAMES) {
    const weight = weights[name];
    const hint = hints[name];
    if (weight !== undefined && hint !== undefined) out[name] = weight * hint;
  }
  return out;
}
