// Sharing a node's capacity among the VMs of its schedule (Fig. 5). Pure.

/** A Fig. 5 schedule entry: the VM, its measured load, its programmed target load, and other info. */
export interface ScheduleEntry {
  vmId: string;
  /** Load measured over the last reporting period, under the node's weights. */
  load: number;
  targetLoad?: number;
  info: { paused: boolean; demand: number; share: number };
}

export interface Claim {
  id: string;
  /** Work units wanted this tick. */
  demand: number;
  /** Relative share when the node is over capacity. */
  weight: number;
}

/**
 * Weighted max-min fair sharing (water-filling): nobody gets more than it wants, and what one VM
 * leaves is shared among the others by weight. Shares are whole work units.
 */
export function shareCapacity(capacity: number, claims: Claim[]): Map<string, number> {
  const shares = new Map<string, number>();
  let left = Math.max(0, capacity);
  let open = claims.filter((c) => {
    if (c.demand <= 0) shares.set(c.id, 0);
    return c.demand > 0;
  });
  while (open.length && left > 1e-9) {
    const totalWeight = open.reduce((sum, c) => sum + c.weight, 0);
    const satisfied = open.filter(
      (c) => c.demand - (shares.get(c.id) ?? 0) <= (left * c.weight) / totalWeight,
    );
    if (!satisfied.length) {
      for (const c of open) shares.set(c.id, (shares.get(c.id) ?? 0) + (left * c.weight) / totalWeight);
      left = 0;
      break;
    }
    for (const c of satisfied) {
      left -= c.demand - (shares.get(c.id) ?? 0);
      shares.set(c.id, c.demand);
    }
    open = open.filter((c) => !satisfied.includes(c));
  }
  for (const c of claims) shares.set(c.id, Math.floor(shares.get(c.id) ?? 0));
  return shares;
}

/**
 * Weights for sharing: a VM's target load where set; VMs without one weigh the mean of the target
 * loads that are set (or 1 when none is), so an unprogrammed VM is an average citizen.
 */
export function shareWeights(targets: (number | undefined)[]): number[] {
  const set = targets.filter((t): t is number => t !== undefined && t > 0);
  const fallback = set.length ? set.reduce((a, b) => a + b, 0) / set.length : 1;
  return targets.map((t) => (t !== undefined && t > 0 ? t : fallback));
}
