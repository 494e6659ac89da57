// A small cluster in the table for balancer tests: nodes with leases and load reports, RUNNING VMs,
// and the agents' side of an order played directly (image ready, take ownership, new reports).
import { vmLoad } from '../../shared/domain/load.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { LoadFactors, Weights } from '../../shared/domain/types.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { type LoadReport, type ReportedVm, registerNode, renewLease } from '../../shared/storage/nodes.ts';
import {
  createVm,
  listAllVms,
  markImageReady,
  markRunning,
  takeOwnership,
  type VmRecord,
} from '../../shared/storage/vms.ts';

export const WEIGHTS: Weights = { cpu: 1, io: 0, mem: 0 };

/** What runBalancer needs for one run at `now`: the stores, a fixed clock, a seeded RNG, no log output. */
export const balancerDeps = (clients: Clients, now: number, seed = 1) => ({
  clients,
  clock: () => now,
  rng: createRng(seed),
  log: { info() {}, warn() {} },
});
const INCARNATION = 'inc-test';
const LEASE_MS = 120_000;

export interface VmFixture {
  id: string;
  cpu: number;
  memPages?: number;
  pinned?: boolean;
  group?: string;
}

export interface NodeFixture {
  id: string;
  vms?: VmFixture[];
  capacity?: number;
  memCapacityPages?: number;
  weights?: Weights;
  /** Age of the node's report at `now` (0 = fresh). */
  reportAgeMs?: number;
  /** True: the lease has lapsed by `now` though the report is fresh. */
  lapsed?: boolean;
}

export const factorsOf = (cpu: number): LoadFactors => ({ cpu, io: 0, mem: 0 });

/** Registers the nodes, creates their VMs as RUNNING (fence 1), and posts one report per node. */
export async function seedCluster(
  clients: Clients,
  now: number,
  nodes: readonly NodeFixture[],
): Promise<void> {
  const factors = new Map<string, LoadFactors>();
  for (const node of nodes) {
    const at = now - (node.lapsed ? 1 : (node.reportAgeMs ?? 0));
    await registerNode(clients, {
      spec: {
        id: node.id,
        capacity: node.capacity ?? 10,
        weights: node.weights ?? WEIGHTS,
        memCapacityPages: node.memCapacityPages ?? 1_000_000,
      },
      incarnation: INCARNATION,
      now: at,
      leaseMs: LEASE_MS,
    });
    for (const vm of node.vms ?? []) {
      await createVm(
        clients,
        {
          id: vm.id,
          owner: node.id,
          guest: { kind: 'cpu' },
          memPages: vm.memPages ?? 16,
          pinned: vm.pinned ?? false,
          ...(vm.group ? { group: vm.group } : {}),
        },
        at,
      );
      await markRunning(clients, { id: vm.id, node: node.id, fence: 1, now: at });
      factors.set(vm.id, factorsOf(vm.cpu));
    }
  }
  const vms = await listAllVms(clients);
  for (const node of nodes) {
    const at = now - (node.lapsed ? 1 : (node.reportAgeMs ?? 0));
    const report = reportFor(node.id, node.weights ?? WEIGHTS, vms, factors, at);
    await renewLease(clients, {
      id: node.id,
      incarnation: INCARNATION,
      now: at,
      leaseMs: node.lapsed ? 0 : LEASE_MS,
      report,
    });
  }
}

/** A node's load report built from the VM items it owns. */
export function reportFor(
  node: string,
  weights: Weights,
  vms: readonly VmRecord[],
  factors: ReadonlyMap<string, LoadFactors>,
  at: number,
): LoadReport {
  const entries: Record<string, ReportedVm> = {};
  let total = 0;
  for (const vm of vms) {
    if (vm.owner !== node || vm.state !== 'RUNNING') continue;
    const f = factors.get(vm.id) ?? vm.factors ?? factorsOf(0);
    const load = vmLoad(f, weights);
    total += load;
    entries[vm.id] = {
      factors: f,
      load,
      memPages: vm.memPages,
      pinned: vm.pinned,
      ...(vm.group ? { group: vm.group } : {}),
      ...(vm.cooldownUntil !== undefined ? { cooldownUntil: vm.cooldownUntil } : {}),
      fence: vm.fence,
      busy: vm.migration !== undefined,
      digest: 'd',
    };
  }
  return { at, total, vms: entries, steal: 0, utilisation: 0 };
}

/**
 * Plays the agents' side: every ordered VM is handed over (image ready, then the target takes it),
 * and every node posts a fresh report at `now`. Returns how many VMs moved.
 */
export async function applyOrders(
  clients: Clients,
  nodes: readonly { id: string; weights?: Weights }[],
  factors: ReadonlyMap<string, LoadFactors>,
  now: number,
  cooldownMs = 0,
): Promise<number> {
  let moved = 0;
  for (const vm of await listAllVms(clients)) {
    const order = vm.migration;
    if (!order) continue;
    const image = { manifest: `images/${vm.id}/${vm.fence}.json`, seq: vm.fence, digest: 'd', vtod: now };
    await markImageReady(clients, {
      id: vm.id,
      order,
      fence: vm.fence,
      image,
      stoppedAt: now,
      bytes: { precopy: 0, final: 0 },
      now,
    });
    await takeOwnership(clients, {
      id: vm.id,
      migrationId: order.id,
      fence: vm.fence,
      node: order.to,
      now,
      cooldownUntil: now + cooldownMs,
    });
    moved++;
  }
  const vms = await listAllVms(clients);
  for (const node of nodes) {
    const report = reportFor(node.id, node.weights ?? WEIGHTS, vms, factors, now);
    await renewLease(clients, { id: node.id, incarnation: INCARNATION, now, leaseMs: LEASE_MS, report });
  }
  return moved;
}
