// Read models: how VM and node items look to API callers, and the placement choice
// (placementCandidates, the balancer's constraints and load) shared by create, resume and migrate.

import {
  isLive,
  type PlacementOptions,
  type PlacementVm,
  placementCandidates,
  placementExclusion,
} from '../../shared/domain/placement.ts';
import { DEFAULT_RESTART_POLICY } from '../../shared/domain/restart.ts';
import { effectiveWeights } from '../../shared/domain/weights.ts';
import { type NodeRecord, placementNode } from '../../shared/storage/nodes.ts';
import type { VmRecord } from '../../shared/storage/vms.ts';
import { conflict, notFound, unprocessable } from './problem.ts';
import type { NodeView, VmView } from './schemas.ts';

/** A node's load as the balancer sees it: the administrator's override, else its last report's total. */
export const nodeLoadOf = (node: NodeRecord) => node.loadOverride ?? node.report?.total ?? 0;

/** A VM as the API shows it; current load and factors come from its owner's last report. */
export function toVmView(vm: VmRecord, owner: NodeRecord | undefined): VmView {
  // A report line speaks for the VM only while it runs under the same fence; after a suspend or a
  // move the owner's last report may still hold the old line until its next heartbeat.
  const line = owner?.report?.vms[vm.id];
  const reported = vm.state === 'RUNNING' && line?.fence === vm.fence ? line : undefined;
  const m = vm.migration;
  return {
    id: vm.id,
    owner: vm.owner,
    state: vm.state,
    guest: vm.guest,
    memPages: vm.memPages,
    targetLoad: vm.targetLoad ?? null,
    cpuLimit: vm.cpuLimit ?? null,
    pinned: vm.pinned,
    group: vm.group ?? null,
    fence: vm.fence,
    digest: reported?.digest ?? vm.digest ?? null,
    load: reported?.load ?? null,
    factors: reported?.factors ?? vm.factors ?? null,
    reportedAt: reported ? (owner?.report?.at ?? null) : null,
    migration: m
      ? {
          id: m.id,
          from: m.from,
          to: m.to,
          phase: m.phase,
          deadline: m.deadline,
          orderedAt: m.orderedAt,
          origin: m.origin,
        }
      : null,
    moves: vm.moves,
    cooldownUntil: vm.cooldownUntil ?? null,
    lastMovedAt: vm.lastMovedAt ?? null,
    restartPolicy: vm.restartPolicy ?? DEFAULT_RESTART_POLICY,
    reason: vm.reason ?? null,
    failures: vm.failures ?? 0,
    retryAt: vm.retryAt ?? null,
    recovery: vm.recovery ?? null,
    createdAt: vm.createdAt,
    updatedAt: vm.updatedAt,
  };
}

export function toNodeView(node: NodeRecord, now: number, withVms: boolean): NodeView {
  const report = node.report;
  const memUsedPages = report ? Object.values(report.vms).reduce((sum, vm) => sum + vm.memPages, 0) : 0;
  return {
    id: node.id,
    live: isLive(node, now),
    leaseUntil: node.leaseUntil,
    draining: node.draining,
    capacity: node.capacity,
    memCapacityPages: node.memCapacityPages,
    memUsedPages,
    weights: node.weights,
    hints: node.hints ?? null,
    effectiveWeights: effectiveWeights(node.weights, node.hints),
    loadOverride: node.loadOverride ?? null,
    load: nodeLoadOf(node),
    report: report
      ? {
          at: report.at,
          total: report.total,
          vmCount: Object.keys(report.vms).length,
          steal: report.steal,
          utilisation: report.utilisation,
          ...(withVms
            ? {
                vms: Object.fromEntries(
                  Object.entries(report.vms).map(([id, vm]) => [
                    id,
                    { load: vm.load, factors: vm.factors, fence: vm.fence, busy: vm.busy, digest: vm.digest },
                  ]),
                ),
              }
            : {}),
        }
      : null,
    claim: node.claim ?? null,
    labels: node.labels ?? {},
    registeredAt: node.registeredAt,
    updatedAt: node.updatedAt,
  };
}

/**
 * Where the API puts a VM: on `wanted` when given and it may take it (else 422 with the reason), or
 * on the first of `prefer` that may take it, or on the best candidate by the balancer's notion of
 * load (else 409 naming why each node refused).
 */
export function choosePlacement(
  records: readonly NodeRecord[],
  vm: PlacementVm,
  now: number,
  wanted: string | undefined,
  verb: string,
  options: PlacementOptions = {},
): string {
  const nodes = records.map(placementNode);
  if (wanted !== undefined) {
    const node = nodes.find((n) => n.id === wanted);
    if (!node) throw notFound('node', wanted);
    const why = placementExclusion(node, vm, now);
    if (why) throw unprocessable(`cannot ${verb} there: ${why.detail}`);
    return node.id;
  }
  const { candidates, excluded } = placementCandidates(nodes, vm, now, options);
  const best = candidates[0];
  if (!best) {
    const reasons = excluded.filter((e) => e.reason !== 'current').map((e) => e.detail);
    throw conflict(`no node can ${verb}${reasons.length ? `: ${reasons.join('; ')}` : ': no nodes'}`);
  }
  return best.node;
}
