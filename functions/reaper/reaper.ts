// The reaper: the protocol's backstop. Nodes whose lease lapsed (plus a grace for clock skew) have
// fenced themselves, so their VMs restart on live nodes from their last image under a new fence;
// migrations stuck past their deadline are rolled back (ORDERED) or finished (IMAGE_READY).
// Every move is a conditional write on the fence the reaper read, so racing an agent is safe.

import { bestPlacement, type PlacementVm, placementVmOf } from '../../shared/domain/placement.ts';
import { isDead } from '../../shared/domain/protocol.ts';
import { isExpired } from '../../shared/domain/vm-state.ts';
import type { Logger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { listNodes, placementNode } from '../../shared/storage/nodes.ts';
import {
  abortMigration,
  deleteVmItem,
  listAllVms,
  markSuspended,
  restartElsewhere,
  settleMigration,
  type VmRecord,
} from '../../shared/storage/vms.ts';

export interface ReaperDeps {
  clients: Clients;
  clock: () => number;
  log: Pick<Logger, 'info' | 'warn'>;
  /** Removes a deleted VM's images; without it a dead node's DELETING VMs keep their images. */
  images?: { deleteVmImages(vmId: string): Promise<unknown> };
}

export interface ReaperOptions {
  /** How long past a lapsed lease before a node counts as dead (covers clock skew); default 5 s. */
  graceMs?: number;
  /** Restricts the run to the nodes (and their VMs) this accepts: one shard of a large cluster. */
  shard?: (nodeId: string) => boolean;
}

export interface ReaperReport {
  at: number;
  deadNodes: string[];
  restarted: { vm: string; from: string; to: string }[];
  suspended: string[];
  deleted: string[];
  aborted: string[];
  settled: { vm: string; to: string }[];
  /** Orders found past their deadline (each was aborted or settled, or lost a race to someone who did). */
  stuckMigrations: number;
  /** VMs of dead nodes left where they are because no live node could take them. */
  homeless: string[];
  /** Conditional writes that lost to a concurrent change (the VM moved on meanwhile). */
  raced: number;
}

export const DEFAULT_GRACE_MS = 5_000;

export async function runReaper(deps: ReaperDeps, options: ReaperOptions = {}): Promise<ReaperReport> {
  const { clients, clock, log } = deps;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const now = clock();
  const inShard = options.shard ?? (() => true);
  const nodes = (await listNodes(clients)).filter((n) => inShard(n.id));
  const vms = (await listAllVms(clients)).filter(
    (vm) => inShard(vm.owner) || (vm.migration !== undefined && inShard(vm.migration.to)),
  );
  const known = new Map(nodes.map((n) => [n.id, n]));
  const dead = new Set(nodes.filter((n) => isDead(n.leaseUntil, now, { graceMs })).map((n) => n.id));
  // Restarts land where the API would place them; each one is added to its target for the next.
  const placing = nodes.map(placementNode);
  const placeOf = (vm: VmRecord): PlacementVm =>
    placementVmOf(vm, known.get(vm.owner)?.report?.vms[vm.id]?.factors);
  const report: ReaperReport = {
    at: now,
    deadNodes: [...dead].sort(),
    restarted: [],
    suspended: [],
    deleted: [],
    aborted: [],
    settled: [],
    stuckMigrations: 0,
    homeless: [],
    raced: 0,
  };
  const ownerDead = (vm: VmRecord) => dead.has(vm.owner) || !known.has(vm.owner);

  for (const item of vms) {
    let vm = item;
    try {
      const order = vm.migration;
      if (order && isExpired(order, now)) {
        report.stuckMigrations += 1;
        if (order.phase === 'ORDERED') {
          vm = await abortMigration(clients, vm.id, order.id, clock());
          report.aborted.push(vm.id);
          await putMigration(
            clients,
            migrationRecord(order, vm.id, { outcome: 'aborted', endedAt: clock(), by: 'reaper' }),
          );
        } else {
          const to = bestPlacement(placing, placeOf(vm), now, [order.to, order.from]);
          if (!to) {
            report.homeless.push(vm.id);
            continue;
          }
          await settleMigration(clients, vm.id, order.id, vm.fence, to, clock());
          report.settled.push({ vm: vm.id, to });
          await putMigration(
            clients,
            migrationRecord(order, vm.id, {
              outcome: 'settled',
              endedAt: clock(),
              by: 'reaper',
              settledOn: to,
            }),
          );
          continue;
        }
      }
      if (!ownerDead(vm)) continue;
      // The target finishes an IMAGE_READY hand-over whatever became of the source; its deadline covers it.
      if (vm.migration?.phase === 'IMAGE_READY') continue;
      switch (vm.state) {
        case 'PENDING':
        case 'RUNNING': {
          const placed = placeOf(vm);
          const to = bestPlacement(placing, placed, now);
          if (!to) {
            report.homeless.push(vm.id);
            break;
          }
          await restartElsewhere(clients, vm.id, vm.owner, vm.fence, to, clock(), vm.state);
          report.restarted.push({ vm: vm.id, from: vm.owner, to });
          const target = placing.find((n) => n.id === to);
          if (target) target.vms = [...target.vms, placed];
          log.info(
            { vm: vm.id, from: vm.owner, to, fence: vm.fence + 1 },
            'restarted a dead node’s VM elsewhere',
          );
          break;
        }
        case 'SUSPENDING':
          await markSuspended(clients, vm.id, vm.owner, vm.fence, undefined, clock());
          report.suspended.push(vm.id);
          break;
        case 'DELETING':
          await deps.images?.deleteVmImages(vm.id);
          await deleteVmItem(clients, vm.id, vm.fence, 'DELETING');
          report.deleted.push(vm.id);
          break;
        case 'SUSPENDED':
          break;
      }
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      report.raced += 1;
    }
  }
  if (report.stuckMigrations || report.restarted.length || report.deadNodes.length)
    log.info(
      {
        dead: report.deadNodes,
        restarted: report.restarted.length,
        aborted: report.aborted.length,
        settled: report.settled.length,
        stuck: report.stuckMigrations,
      },
      'reaper run',
    );
  return report;
}
