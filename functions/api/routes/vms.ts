// VM lifecycle: launch, list, show, change settings, suspend, resume, restart, migrate, delete.
// Each mutation reads the item and writes conditionally on the fence it read: a lost race is a
// 409 and nothing changes. The routes are declared in vm-schemas.ts; one named handler each here.
import type { RouteHandler, z } from '@hono/zod-openapi';
import { driverOf } from '../../../shared/domain/guests.ts';
import { expectedFactors, type PlacementVm, placementVmOf } from '../../../shared/domain/placement.ts';
import type { MigrationOrder } from '../../../shared/domain/vm-state.ts';
import { ConditionFailed } from '../../../shared/errors.ts';
import type { Clients } from '../../../shared/storage/clients.ts';
import { getBalancingConfig } from '../../../shared/storage/config-store.ts';
import { createImageStore } from '../../../shared/storage/image-store.ts';
import { findNode, listNodesById } from '../../../shared/storage/node-lookups.ts';
import { listNodes } from '../../../shared/storage/nodes.ts';
import { patchVmAtFence } from '../../../shared/storage/vm-settings.ts';
import {
  createVm,
  deleteVmItem,
  getVm,
  listVmsPage,
  type NewVm,
  orderMigration,
  requestState,
  restartVm,
  resumeVm,
  type VmRecord,
} from '../../../shared/storage/vms.ts';
import type { ApiDeps } from '../deps.ts';
import { checkLaunch } from '../launch-checks.ts';
import { conflict, notFound, unprocessable } from '../problem.ts';
import { newRouter } from '../router.ts';
import { pageAnswer, pageOptions } from '../schemas.ts';
import { choosePlacement, toVmView } from '../views.ts';
import {
  type CreateVmSchema,
  deleteVmRoute,
  getVmRoute,
  launchVmRoute,
  listVmsRoute,
  migrateVmRoute,
  patchVmRoute,
  restartVmRoute,
  resumeVmRoute,
  suspendVmRoute,
} from './vm-schemas.ts';

/** The VM routes, chained so the app's type (and the typed client) carries every one. */
export function vmRoutes(deps: ApiDeps) {
  return newRouter()
    .openapi(launchVmRoute, launch(deps))
    .openapi(listVmsRoute, list(deps))
    .openapi(getVmRoute, show(deps))
    .openapi(patchVmRoute, patch(deps))
    .openapi(suspendVmRoute, suspend(deps))
    .openapi(resumeVmRoute, resume(deps))
    .openapi(restartVmRoute, restart(deps))
    .openapi(migrateVmRoute, migrate(deps))
    .openapi(deleteVmRoute, remove(deps));
}

const view = async (clients: Clients, vm: VmRecord) => toVmView(vm, await findNode(clients, vm.owner));

/** Turns a fence race on a write into a 409 that names the VM. */
const raced = (id: string) => (error: unknown) => {
  if (error instanceof ConditionFailed)
    throw conflict(`vm ${id} changed while the request ran (${error.transition}); nothing was changed`);
  throw error;
};

function describe(vm: VmRecord): string {
  if (vm.migration) return `${vm.state} with migration ${vm.migration.id} to ${vm.migration.to} in flight`;
  return vm.state;
}

/** POST /v1/vms: checks the guest, places the VM and writes it PENDING on its node. */
const launch =
  (deps: ApiDeps): RouteHandler<typeof launchVmRoute> =>
  async (c) => {
    const { clients } = deps;
    const body = c.req.valid('json');
    const now = deps.clock();
    if (body.series && body.guest !== 'trace') throw unprocessable('series is only for the trace guest');
    const memPages = await checkLaunch(clients, body);
    const placed: PlacementVm = {
      factors: expectedFactors({
        memPages,
        ...(body.cpuLimit !== undefined ? { cpuLimit: body.cpuLimit } : {}),
      }),
      memPages,
      ...(body.group !== undefined ? { group: body.group } : {}),
      ...(driverOf(body.guest) !== 'wasm' ? { driver: driverOf(body.guest) } : {}),
    };
    const owner = choosePlacement(await listNodes(clients), placed, now, body.node, 'place the VM');
    // Placed by placement (not on a node the caller named): its first cooldown, as after a move.
    const cooldownUntil =
      body.node === undefined ? now + (await getBalancingConfig(clients)).cooldownMs : undefined;
    const vm = await createVm(clients, newVmOf(body, deps.newId('vm'), owner, memPages, cooldownUntil), now);
    c.header('Location', `/v1/vms/${vm.id}`);
    return c.json(await view(clients, vm), 201);
  };

function newVmOf(
  body: z.infer<typeof CreateVmSchema>,
  id: string,
  owner: string,
  memPages: number,
  cooldownUntil: number | undefined,
): NewVm {
  return {
    id,
    owner,
    guest: {
      kind: body.guest,
      ...(body.params ? { params: body.params } : {}),
      ...(body.series ? { series: body.series } : {}),
    },
    memPages,
    ...(body.targetLoad !== undefined ? { targetLoad: body.targetLoad } : {}),
    ...(body.cpuLimit !== undefined ? { cpuLimit: body.cpuLimit } : {}),
    ...(body.pinned !== undefined ? { pinned: body.pinned } : {}),
    ...(body.group !== undefined ? { group: body.group } : {}),
    ...(cooldownUntil !== undefined ? { cooldownUntil } : {}),
    ...(body.restartPolicy !== undefined ? { restartPolicy: body.restartPolicy } : {}),
  };
}

/** GET /v1/vms: one page, filtered by owner and state. */
const list =
  ({ clients }: ApiDeps): RouteHandler<typeof listVmsRoute> =>
  async (c) => {
    const q = c.req.valid('query');
    const page = await listVmsPage(clients, {
      ...pageOptions(q),
      ...(q.node ? { owner: q.node } : {}),
      ...(q.state ? { state: q.state } : {}),
    });
    const nodes = await listNodesById(clients);
    return c.json(
      pageAnswer(page, (vm) => toVmView(vm, nodes.get(vm.owner))),
      200,
    );
  };

/** GET /v1/vms/{id}. */
const show =
  ({ clients }: ApiDeps): RouteHandler<typeof getVmRoute> =>
  async (c) =>
    c.json(await view(clients, await getVm(clients, c.req.valid('param').id)), 200);

/** PATCH /v1/vms/{id}: settings, at the fence read. */
const patch =
  (deps: ApiDeps): RouteHandler<typeof patchVmRoute> =>
  async (c) => {
    const { clients } = deps;
    const { id } = c.req.valid('param');
    const vm = await getVm(clients, id);
    if (vm.state === 'DELETING') throw conflict(`vm ${id} is being deleted`);
    const updated = await patchVmAtFence(clients, {
      id,
      fence: vm.fence,
      patch: c.req.valid('json'),
      now: deps.clock(),
    }).catch(raced(id));
    return c.json(await view(clients, updated), 200);
  };

/** Reads VM `id` and refuses it (409) unless `may(vm)`; `only` says which VMs may, for the message. */
async function vmThatMay(
  clients: Clients,
  id: string,
  may: (vm: VmRecord) => boolean,
  only: string,
): Promise<VmRecord> {
  const vm = await getVm(clients, id);
  if (!may(vm)) throw conflict(`vm ${id} is ${describe(vm)}; ${only}`);
  return vm;
}

const runningAlone = (vm: VmRecord) => vm.state === 'RUNNING' && !vm.migration;

/** Asks the owner, at the fence read, to suspend or delete the VM; the VM as it is then. */
async function askOwner(deps: ApiDeps, vm: VmRecord, want: 'SUSPENDING' | 'DELETING') {
  const { id, fence } = vm;
  const updated = await requestState(deps.clients, { id, fence, want, now: deps.clock() }).catch(raced(id));
  return view(deps.clients, updated);
}

/** POST /v1/vms/{id}/suspend: asks the owner to write the state and stop. */
const suspend =
  (deps: ApiDeps): RouteHandler<typeof suspendVmRoute> =>
  async (c) => {
    const { id } = c.req.valid('param');
    const only = 'only a RUNNING VM with no migration in flight can be suspended';
    const vm = await vmThatMay(deps.clients, id, runningAlone, only);
    return c.json(await askOwner(deps, vm, 'SUSPENDING'), 202);
  };

/** How a stopped VM starts again: from which state, by which conditional write, which nodes first. */
interface StartAgain {
  from: 'SUSPENDED' | 'FAILED';
  verb: string;
  done: string;
  write: typeof resumeVm;
  prefer?: (vm: VmRecord) => string[];
}

/**
 * A stopped VM PENDING again under a new fence: on `node` when the caller names one, else on the
 * first preferred node that may take it, else on the best placement.
 */
async function startAgain(deps: ApiDeps, id: string, node: string | undefined, how: StartAgain) {
  const { clients } = deps;
  const now = deps.clock();
  const vm = await vmThatMay(
    clients,
    id,
    (v) => v.state === how.from,
    `only a ${how.from} VM can be ${how.done}`,
  );
  const prefer = how.prefer?.(vm);
  const target = choosePlacement(await listNodes(clients), placementVmOf(vm), now, node, `${how.verb} it`, {
    prefer,
  });
  const updated = await how.write(clients, { id, fence: vm.fence, node: target, now }).catch(raced(id));
  return view(clients, updated);
}

/** POST /v1/vms/{id}/resume: a SUSPENDED VM, PENDING again on `node` or the best placement. */
const resume =
  (deps: ApiDeps): RouteHandler<typeof resumeVmRoute> =>
  async (c) => {
    const how: StartAgain = { from: 'SUSPENDED', verb: 'resume', done: 'resumed', write: resumeVm };
    return c.json(await startAgain(deps, c.req.valid('param').id, c.req.valid('json').node, how), 202);
  };

/** POST /v1/vms/{id}/restart: a FAILED VM, PENDING again; its own node first when it still fits. */
const restart =
  (deps: ApiDeps): RouteHandler<typeof restartVmRoute> =>
  async (c) => {
    // Its own node first: a failure is the guest's doing, not the node's.
    const how: StartAgain = {
      from: 'FAILED',
      verb: 'restart',
      done: 'restarted',
      write: restartVm,
      prefer: (vm) => [vm.owner],
    };
    return c.json(await startAgain(deps, c.req.valid('param').id, c.req.valid('json').node, how), 202);
  };

/** POST /v1/vms/{id}/migrate: writes a migration order on the VM, to a node or the best placement. */
const migrate =
  (deps: ApiDeps): RouteHandler<typeof migrateVmRoute> =>
  async (c) => {
    const { clients } = deps;
    const { id } = c.req.valid('param');
    const { to } = c.req.valid('json');
    const now = deps.clock();
    const only = 'only a RUNNING VM with no migration in flight can migrate';
    const vm = await vmThatMay(clients, id, runningAlone, only);
    if (vm.pinned) throw conflict(`vm ${id} is pinned; unpin it (PATCH pinned=false) to migrate it`);
    const nodes = await listNodes(clients);
    if (to !== 'auto' && !nodes.some((n) => n.id === to)) throw notFound('node', to);
    if (to === vm.owner) throw unprocessable(`vm ${id} already runs on ${to}`);
    const line = nodes.find((n) => n.id === vm.owner)?.report?.vms[id];
    const placed: PlacementVm = { ...placementVmOf(vm, line?.factors), leaving: vm.owner };
    const target = choosePlacement(nodes, placed, now, to === 'auto' ? undefined : to, `migrate vm ${id}`);
    const order: MigrationOrder = {
      id: deps.newId('mig'),
      from: vm.owner,
      to: target,
      phase: 'ORDERED',
      deadline: now + deps.migrationDeadlineMs,
      orderedAt: now,
      origin: 'api',
    };
    const updated = await orderMigration(clients, id, vm.fence, order).catch(raced(id));
    return c.json(await view(clients, updated), 202);
  };

/** DELETE /v1/vms/{id}: a stopped VM goes at once (204); a running one is stopped by its owner (202). */
const remove = (deps: ApiDeps): RouteHandler<typeof deleteVmRoute> => {
  const images = createImageStore(deps.clients);
  return async (c) => {
    const { clients } = deps;
    const { id } = c.req.valid('param');
    const vm = await getVm(clients, id);
    if (vm.state === 'DELETING') return c.json(await view(clients, vm), 202);
    if (vm.state === 'SUSPENDED' || vm.state === 'FAILED') {
      // The item goes first: a concurrent resume then fails on the fence instead of finding no image.
      await deleteVmItem(clients, id, vm.fence, vm.state).catch(raced(id));
      await images.deleteVmImages(id).catch(deps.logError);
      return c.body(null, 204);
    }
    if ((vm.state !== 'RUNNING' && vm.state !== 'PENDING') || vm.migration)
      throw conflict(`vm ${id} is ${describe(vm)}; wait for it to settle, then delete it`);
    return c.json(await askOwner(deps, vm, 'DELETING'), 202);
  };
};
