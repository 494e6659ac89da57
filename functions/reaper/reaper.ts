// The reaper: the protocol's backstop. Nodes whose lease lapsed (plus a grace for clock skew) have
// fenced themselves, so their VMs restart on live nodes from their last image under a new fence;
// migrations stuck past their deadline are rolled back (ORDERED) or finished (IMAGE_READY).
// Every move is a conditional write on the fence the reaper read, so racing an agent is safe.

import {
  bestPlacement,
  type PlacementNode,
  type PlacementVm,
  placementVmOf,
} from '../../shared/domain/placement.ts';
import { abortReason, isDead } from '../../shared/domain/protocol.ts';
import { isExpired, type MigrationOrder } from '../../shared/domain/vm-state.ts';
import type { Logger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { migrationRecord, putMigration } from '../../shared/storage/migrations.ts';
import { listNodes, type NodeRecord, placementNode } from '../../shared/storage/nodes.ts';
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

/** What one reaper run works from: the time, the dead nodes and where restarts may land. */
interface Sweep {
  clients: Clients;
  clock: () => number;
  log: Pick<Logger, 'info' | 'warn'>;
  images: ReaperDeps['images'];
  now: number;
  dead: Set<string>;
  known: Map<string, NodeRecord>;
  /** Placement view of the nodes; each restart is added to its target for the next. */
  placing: PlacementNode[];
  report: ReaperReport;
}

export async function runReaper(deps: ReaperDeps, options: ReaperOptions = {}): Promise<ReaperReport> {
  const { sweep, vms } = await readSweep(deps, options);
  for (const vm of vms) {
    try {
      await reapVm(sweep, vm);
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
      sweep.report.raced += 1;
    }
  }
  logSweep(deps.log, sweep.report);
  return sweep.report;
}

/** Reads the shard's nodes and the VMs they own or receive, and finds the dead nodes. */
async function readSweep(
  deps: ReaperDeps,
  options: ReaperOptions,
): Promise<{ sweep: Sweep; vms: VmRecord[] }> {
  const { clients, clock, log } = deps;
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const now = clock();
  const inShard = options.shard ?? (() => true);
  const nodes = (await listNodes(clients)).filter((n) => inShard(n.id));
  const vms = (await listAllVms(clients)).filter(
    (vm) => inShard(vm.owner) || (vm.migration !== undefined && inShard(vm.migration.to)),
  );
  const dead = new Set(nodes.filter((n) => isDead(n.leaseUntil, now, { graceMs })).map((n) => n.id));
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
  const sweep: Sweep = {
    clients,
    clock,
    log,
    images: deps.images,
    now,
    dead,
    known: new Map(nodes.map((n) => [n.id, n])),
    // Restarts land where the API would place them.
    placing: nodes.map(placementNode),
    report,
  };
  return { sweep, vms };
}

/** The VM as placement sees it, with the factors its owner last reported. */
const placeOf = (sweep: Sweep, vm: VmRecord): PlacementVm =>
  placementVmOf(vm, sweep.known.get(vm.owner)?.report?.vms[vm.id]?.factors);

/** One VM: finish or undo its stuck migration, then restart, suspend or delete it if its owner died. */
async function reapVm(sweep: Sweep, item: VmRecord): Promise<void> {
  let vm = item;
  const order = vm.migration;
  if (order && isExpired(order, sweep.now)) {
    sweep.report.stuckMigrations += 1;
    if (order.phase !== 'ORDERED') {
      await settleStuck(sweep, vm, order);
      return;
    }
    vm = await abortStuck(sweep, vm, order);
  }
  const ownerDead = sweep.dead.has(vm.owner) || !sweep.known.has(vm.owner);
  if (!ownerDead) return;
  // The target finishes an IMAGE_READY hand-over whatever became of the source; its deadline covers it.
  if (vm.migration?.phase === 'IMAGE_READY') return;
  await reapOrphan(sweep, vm);
}

/** An order still ORDERED past its deadline: drop it; the source keeps the VM. */
async function abortStuck(sweep: Sweep, vm: VmRecord, order: MigrationOrder): Promise<VmRecord> {
  const { clients, clock, report } = sweep;
  const aborted = await abortMigration(clients, vm.id, order.id, clock());
  report.aborted.push(aborted.id);
  await putMigration(
    clients,
    migrationRecord(order, aborted.id, {
      outcome: 'aborted',
      endedAt: clock(),
      by: 'reaper',
      reason: abortReason(order, clock()),
    }),
  );
  return aborted;
}

/** An IMAGE_READY order past its deadline: restart the VM from its final image on target or source. */
async function settleStuck(sweep: Sweep, vm: VmRecord, order: MigrationOrder): Promise<void> {
  const { clients, clock, report } = sweep;
  const to = bestPlacement(sweep.placing, placeOf(sweep, vm), sweep.now, [order.to, order.from]);
  if (!to) {
    report.homeless.push(vm.id);
    return;
  }
  await settleMigration(clients, {
    id: vm.id,
    migrationId: order.id,
    fence: vm.fence,
    node: to,
    now: clock(),
  });
  report.settled.push({ vm: vm.id, to });
  await putMigration(
    clients,
    migrationRecord(order, vm.id, { outcome: 'settled', endedAt: clock(), by: 'reaper', settledOn: to }),
  );
}

/** A VM whose owner is dead: what happens depends on the state it was left in. */
async function reapOrphan(sweep: Sweep, vm: VmRecord): Promise<void> {
  const { clients, clock, report } = sweep;
  switch (vm.state) {
    case 'PENDING':
    case 'RUNNING':
      await restartOrphan(sweep, vm, vm.state);
      return;
    case 'SUSPENDING':
      await markSuspended(clients, { id: vm.id, node: vm.owner, fence: vm.fence, now: clock() });
      report.suspended.push(vm.id);
      return;
    case 'DELETING':
      await sweep.images?.deleteVmImages(vm.id);
      await deleteVmItem(clients, vm.id, vm.fence, 'DELETING');
      report.deleted.push(vm.id);
      return;
    case 'SUSPENDED':
      return;
  }
}

async function restartOrphan(sweep: Sweep, vm: VmRecord, seen: 'PENDING' | 'RUNNING'): Promise<void> {
  const placed = placeOf(sweep, vm);
  const to = bestPlacement(sweep.placing, placed, sweep.now);
  if (!to) {
    sweep.report.homeless.push(vm.id);
    return;
  }
  await restartElsewhere(sweep.clients, {
    id: vm.id,
    deadNode: vm.owner,
    fence: vm.fence,
    node: to,
    now: sweep.clock(),
    seen,
  });
  sweep.report.restarted.push({ vm: vm.id, from: vm.owner, to });
  const target = sweep.placing.find((n) => n.id === to);
  if (target) target.vms = [...target.vms, placed];
  sweep.log.info(
    { vm: vm.id, from: vm.owner, to, fence: vm.fence + 1 },
    'restarted a dead node’s VM elsewhere',
  );
}

function logSweep(log: Pick<Logger, 'info' | 'warn'>, report: ReaperReport): void {
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
}
