// Turns API responses into what the page draws. Pure: data in, data out (the clock is passed in).

/** A node's load: the administrator's override, else the agent's last report. */
export function nodeLoad(node) {
  if (typeof node.load === 'number') return node.load;
  if (typeof node.loadOverride === 'number') return node.loadOverride;
  return typeof node.report?.total === 'number' ? node.report.total : 0;
}

export function imbalance(loads) {
  if (loads.length === 0) return { cv: 0, maxOverMean: 1, mean: 0, maxLoad: 0 };
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  const maxLoad = Math.max(...loads);
  if (mean <= 0) return { cv: 0, maxOverMean: 1, mean, maxLoad };
  const variance = loads.reduce((sum, l) => sum + (l - mean) ** 2, 0) / loads.length;
  return { cv: Math.sqrt(variance) / mean, maxOverMean: maxLoad / mean, mean, maxLoad };
}

/** Relative distance from the mean, in [-1, 1]: the colour of a node's bar. */
export function deviation(load, mean) {
  if (mean <= 0) return 0;
  return Math.max(-1, Math.min(1, (load - mean) / mean));
}

/** How far from the mean (as a fraction of it) a node still counts as "near mean". */
export const NEAR_MEAN = 0.1;

/**
 * The colour band of a node, exactly as the legend reads: dead and draining nodes are marked as
 * such whatever their load; the others are below, near (within ±10 %) or above the mean.
 */
export function band(node) {
  if (node.dead) return 'dead';
  if (node.draining) return 'draining';
  if (node.deviation >= NEAR_MEAN) return 'over';
  if (node.deviation <= -NEAR_MEAN) return 'under';
  return 'even';
}

/** The reason most of a run's pairs gave, with how many gave it (a run record counts them in `reasons`). */
export function dominantReason(run) {
  let counts = run?.reasons && typeof run.reasons === 'object' ? run.reasons : null;
  if (!counts) {
    counts = {};
    for (const pair of runParts(run).pairs) {
      const code = pair.reason?.code ?? '?';
      counts[code] = (counts[code] ?? 0) + 1;
    }
  }
  let best;
  for (const [code, count] of Object.entries(counts)) {
    if (typeof count !== 'number' || count <= 0) continue;
    if (!best || count > best.count || (count === best.count && code < best.code)) best = { code, count };
  }
  return best;
}

/**
 * Nodes with their VMs. A VM sits on the node that owns it, with the load its owner last reported.
 * Suspended VMs are listed apart: they hold no load.
 */
export function buildView({ nodes, vms }, now, proposal) {
  const moving = new Map();
  for (const move of proposal?.moves ?? []) moving.set(move.vm, move.to);

  const byOwner = new Map();
  const suspended = [];
  const migrations = [];
  const seen = new Set();
  for (const vm of vms) {
    seen.add(vm.id);
    if (vm.migration) migrations.push({ vm: vm.id, ...vm.migration });
    if (vm.state === 'SUSPENDED') {
      suspended.push(vm);
      continue;
    }
    if (!byOwner.has(vm.owner)) byOwner.set(vm.owner, []);
    byOwner.get(vm.owner).push(vm);
  }

  const viewNodes = nodes
    .map((node) => {
      const reported = node.report?.vms ?? {};
      const list = (byOwner.get(node.id) ?? []).map((vm) => ({
        id: vm.id,
        state: vm.state,
        guest: vm.guest?.kind,
        reason: vm.reason ?? null,
        load: vm.load ?? reported[vm.id]?.load ?? 0,
        targetLoad: vm.targetLoad,
        cpuLimit: vm.cpuLimit,
        pinned: Boolean(vm.pinned),
        group: vm.group,
        migration: vm.migration,
        proposedTo: moving.get(vm.id),
      }));
      // VMs the node reports that the listing has not shown yet (created between two reads).
      for (const [id, entry] of Object.entries(reported)) {
        if (seen.has(id)) continue;
        list.push({
          id,
          state: 'RUNNING',
          load: entry.load ?? 0,
          targetLoad: entry.targetLoad,
          pinned: entry.pinned,
        });
      }
      list.sort((a, b) => b.load - a.load || a.id.localeCompare(b.id));
      const dead = typeof node.live === 'boolean' ? !node.live : node.leaseUntil < now;
      return {
        id: node.id,
        capacity: node.capacity,
        load: nodeLoad(node),
        overridden: typeof node.loadOverride === 'number' && node.loadOverride !== null,
        draining: Boolean(node.draining),
        dead,
        claimed: node.claim && node.claim.until >= now ? node.claim.run : undefined,
        reportAt: node.report?.at,
        steal: node.report?.steal,
        utilisation: node.report?.utilisation,
        weights: node.weights,
        vms: list,
      };
    })
    .sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));

  const live = viewNodes.filter((n) => !n.dead);
  // As GET /v1/cluster reports it (countedImbalance): draining and dead nodes are left out, and
  // colours compare each node with the mean of the nodes that take load.
  const takers = live.filter((n) => !n.draining);
  const stats = imbalance(takers.map((n) => n.load));
  const mean = stats.mean;
  for (const node of viewNodes) {
    node.deviation = node.dead || node.draining ? 0 : deviation(node.load, mean);
    node.band = band(node);
  }

  return {
    nodes: viewNodes,
    mean,
    cv: stats.cv,
    maxOverMean: stats.maxOverMean,
    suspended,
    migrations,
    vmCount: vms.length,
    running: vms.filter((vm) => vm.state === 'RUNNING').length,
  };
}

/** The pairs and moves of a run record or a dry-run answer, whatever it nests them under. */
export function runParts(run) {
  // A run record carries the round's decision at its top level; an unstored answer may nest it.
  const decision = (typeof run?.decision === 'object' && run.decision) || run || {};
  const pairs = Array.isArray(decision.pairs) ? decision.pairs : [];
  let moves = Array.isArray(decision.moves) ? decision.moves : null;
  if (!moves) moves = pairs.flatMap((p) => p.moves ?? []);
  // A stored run says which of its decided moves it actually ordered.
  const ordered = Array.isArray(run?.orders)
    ? run.orders.filter((o) => o.outcome === 'written' || o.outcome === 'dry-run').length
    : moves.length;
  return {
    pairs,
    moves,
    ordered,
    before: decision.before ?? run?.before,
    after: decision.after ?? run?.after,
    skipped: Array.isArray(decision.skipped) ? decision.skipped : [],
  };
}

export function runTime(run) {
  for (const key of ['at', 'startedAt', 'finishedAt', 'createdAt']) {
    if (typeof run?.[key] === 'number') return run[key];
    if (typeof run?.[key] === 'string') return Date.parse(run[key]);
  }
  return undefined;
}
