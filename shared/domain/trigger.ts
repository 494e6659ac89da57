// When a pair acts. `difference` chases every gap, `headroom` only relieves nodes near capacity, and
// `auto` (the default) chooses each round from what it measures: an imbalance that outlasts the
// rounds (structural, e.g. a skewed placement) is worth evening out; one that the load's own churn
// makes and unmakes between rounds (noise, e.g. 5-minute utilisation wiggles) is not, and then only
// real overload is relieved.
import type { BalancingConfig } from './types.ts';

/** The spread of loads must exceed this many times the round-to-round noise to count as structural. */
export const STRUCTURAL_RATIO = 2;

/** Under noise, a node acts only above this multiple of its capacity (a real overload, not a wiggle). */
export const OVERLOAD_FACTOR = 1.05;

/** What a round's trigger is and what `auto` measured to choose it. */
export interface TriggerChoice {
  /** `overload` is auto's choice under noise: give only above OVERLOAD_FACTOR × capacity, down to capacity. */
  trigger: 'difference' | 'headroom' | 'overload';
  /** Standard deviation of the counted nodes' loads, over their mean. */
  spread: number;
  /** Root mean square of how far each node's load moved from what the last round expected, over the mean. */
  noise: number | undefined;
}

/** Node loads by id, visited in order (a Map is one). */
export interface LoadsById {
  forEach(fn: (load: number, id: string) => void): void;
}

/**
 * The trigger for this round. Under `auto`: `difference` while the spread of loads is more than
 * STRUCTURAL_RATIO times the round-to-round noise, or when there is no earlier round to measure noise
 * against; `overload` otherwise. `loads` are the non-draining nodes' loads now; `expected` what the
 * previous round expected them to be after its moves.
 */
export function chooseTrigger(
  config: Pick<BalancingConfig, 'trigger'>,
  loads: LoadsById,
  expected: Readonly<Record<string, number>> | undefined,
): TriggerChoice {
  let n = 0;
  let sum = 0;
  let sq = 0;
  let driftSq = 0;
  let compared = 0;
  // forEach, not for…of: no [id, load] entry is allocated per node.
  loads.forEach((load, id) => {
    n++;
    sum += load;
    sq += load * load;
    const before = expected?.[id];
    if (before !== undefined) {
      driftSq += (load - before) ** 2;
      compared++;
    }
  });
  const mean = n > 0 ? sum / n : 0;
  const spread = mean > 0 ? Math.sqrt(Math.max(0, sq / n - mean * mean)) / mean : 0;
  const noise = compared > 0 && mean > 0 ? Math.sqrt(driftSq / compared) / mean : undefined;
  const configured = config.trigger ?? 'difference';
  if (configured !== 'auto') return { trigger: configured, spread, noise };
  const structural = noise === undefined || spread > STRUCTURAL_RATIO * noise;
  return { trigger: structural ? 'difference' : 'overload', spread, noise };
}
