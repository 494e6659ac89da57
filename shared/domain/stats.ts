// How uneven a set of node loads is.
import type { Imbalance } from './types.ts';

/**
 * The cluster's imbalance as every figure reports it (API, CLI, dashboard, run records): over the
 * nodes that may hold load, leaving out draining nodes (on their way to zero) and dead ones.
 */
export function countedImbalance(
  nodes: readonly { load: number; draining?: boolean; dead?: boolean }[],
): Imbalance {
  return imbalance(nodes.filter((n) => !n.draining && !n.dead).map((n) => n.load));
}

/** The spread of node loads: coefficient of variation, max over mean, max and mean (all 0/1 when empty). */
export function imbalance(loads: ArrayLike<number>): Imbalance {
  const n = loads.length;
  if (n === 0) return { cv: 0, maxOverMean: 1, maxLoad: 0, mean: 0 };
  let sum = 0;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const l = loads[i] ?? 0;
    sum += l;
    if (l > max) max = l;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += ((loads[i] ?? 0) - mean) ** 2;
  const std = Math.sqrt(sq / n);
  if (mean <= 0) return { cv: 0, maxOverMean: 1, maxLoad: max, mean };
  return { cv: std / mean, maxOverMean: max / mean, maxLoad: max, mean };
}
