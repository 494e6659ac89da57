// VM lifecycle: launch, list, show, change settings, suspend, resume, migrate, delete.
// Each mutation reads the item and writes conditionally on the fence it read: a lost race is a
// 409 and nothing changes.
import { createRoute, z } from '@hono/zod-openapi';
import { WASM_GUEST_KIND, WASM_GUEST_KINDS_TEXT } from '../../../shared/domain/guests.ts';
import {
  expectedFactors,
  type PlacementVm,
  placementExclusion,
  placementVmOf,
} from '../../../shared/domain/placement.ts';
import type { MigrationOrder } from '../../../shared/domain/vm-state.ts';
import { MAX_VM_MEM_PAGES } from '../../../shared/guest-params.ts';
import { getBalancingConfig } from '../../../shared/storage/config-store.ts';
import { ConditionFailed } from '../../../shared/storage/errors.ts';
import { createImageStore } from '../../../shared/storage/image-store.ts';
import { listNodes, placementNode } from '../../../shared/storage/nodes.ts';
import {
  createVm,
  deleteVmItem,
  getVm,
  listVmsPage,
  orderMigration,
  requestState,
  restartVm,
  resumeVm,
  type VmRecord,
} from '../../../shared/storage/vms.ts';
import type { ApiDeps } from '../deps.ts';
import { checkLaunch } from '../launch-checks.ts';
import { findNode, listNodesById } from '../node-reads.ts';
import { conflict, notFound, problemResponses, unprocessable } from '../problem.ts';
import { bearerSecurity, newRouter } from '../router.ts';
import {
  IdParamSchema,
  jsonBody,
  jsonResponse,
  RestartPolicySchema,
  VmSchema,
  VmStateSchema,
} from '../schemas.ts';
import { choosePlacement, toVmView } from '../views.ts';
import { patchVmAtFence } from '../vm-writes.ts';

const MAX_MEM_PAGES = MAX_VM_MEM_PAGES;

const nodeId = z.string().min(1).max(128);
const targetLoad = z.number().finite().min(0).max(1_000_000);
const group = z.string().min(1).max(128);
const cpuLimit = z.number().finite().gt(0).max(1024).openapi({
  description: 'Cores the VM may use at most (e.g. 0.5), enforced by the kernel. Not the target load.',
});

const CreateVmSchema = z
  .object({
    guest: z
      .string()
      .regex(WASM_GUEST_KIND, { message: `guest must be ${WASM_GUEST_KINDS_TEXT}` })
      .openapi({ example: 'cpu' }),
    node: nodeId.optional().openapi({
      description:
        'Place it here; default: the live node with the least load with it, under each node’s weights (anti-affinity, drain and memory apply).',
    }),
    targetLoad: targetLoad.optional().openapi({
      description:
        'Programmed target load (patent Fig. 7): guides selection and sharing; does not limit the VM.',
    }),
    cpuLimit: cpuLimit.optional(),
    memPages: z.number().int().min(1).max(MAX_MEM_PAGES).optional().openapi({ description: '64 KiB pages.' }),
    group: group
      .optional()
      .openapi({ description: 'Anti-affinity group: no two VMs of a group share a node.' }),
    pinned: z.boolean().optional(),
    params: z.record(z.string().min(1).max(64), z.number().finite()).optional(),
    series: z.array(z.number().finite().min(0).max(100)).min(1).max(100_000).optional().openapi({
      description: 'For the trace guest: utilisation per step, in percent.',
    }),
    restartPolicy: RestartPolicySchema.optional(),
  })
  .strict()
  .openapi('CreateVm');

const PatchVmSchema = z
  .object({
    targetLoad: targetLoad.nullable().optional(),
    cpuLimit: cpuLimit.nullable().optional(),
    pinned: z.boolean().optional(),
    group: group.nullable().optional(),
  })
  .strict()
  .openapi('PatchVm');

const ResumeSchema = z.object({ node: nodeId.optional() }).strict().openapi('ResumeVm');
const MigrateSchema = z
  .object({
    to: nodeId.openapi({ description: "A node id, or 'auto' for the best placement (as for create)." }),
  })
  .strict()
  .openapi('MigrateVm');
const EmptySchema = z.object({}).strict();

const ListQuerySchema = z
  .object({
    node: nodeId.optional(),
    state: VmStateSchema.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(2048).optional(),
  })
  .strict();

const VmPageSchema = z.object({ items: z.array(VmSchema), next: z.string().nullable() }).openapi('VmPage');

const vmPath = '/v1/vms/{id}';
const tags = ['VMs'];

export function vmRoutes(deps: ApiDeps) {
  const { clients } = deps;
  const images = createImageStore(clients);
  const app = newRouter();

  const view = async (vm: VmRecord) => toVmView(vm, await findNode(clients, vm.owner));

  /** Reads a VM, turning a fence race on the following write into a 409 that names the VM. */
  const raced = (id: string) => (error: unknown) => {
    if (error instanceof ConditionFailed)
      throw conflict(`vm ${id} changed while the request ran (${error.transition}); nothing was changed`);
    throw error;
  };

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/vms',
      tags,
      security: bearerSecurity,
      summary: 'Launch a VM from a built-in guest or a registered module',
      request: { body: jsonBody(CreateVmSchema) },
      responses: {
        201: jsonResponse(VmSchema, 'The new VM (PENDING until its node starts it)'),
        ...problemResponses(400, 401, 404, 409, 415, 422),
      },
    }),
    async (c) => {
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
      };
      const owner = choosePlacement(await listNodes(clients), placed, now, body.node, 'place the VM');
      const vm = await createVm(
        clients,
        {
          id: deps.newId('vm'),
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
          // Placed by placement (not on a node the caller named): its first cooldown, as after a move.
          ...(body.node === undefined
            ? { cooldownUntil: now + (await getBalancingConfig(clients)).cooldownMs }
            : {}),
          ...(body.restartPolicy !== undefined ? { restartPolicy: body.restartPolicy } : {}),
        },
        now,
      );
      c.header('Location', `/v1/vms/${vm.id}`);
      return c.json(await view(vm), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/vms',
      tags,
      security: bearerSecurity,
      summary: 'List VMs, optionally by node and state, a page at a time',
      description:
        'Pages follow `next` as `cursor`. A filtered page may hold fewer than `limit` items (even none) while `next` is set.',
      request: { query: ListQuerySchema },
      responses: { 200: jsonResponse(VmPageSchema, 'One page of VMs'), ...problemResponses(400, 401) },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const page = await listVmsPage(clients, {
        limit: q.limit,
        ...(q.cursor ? { cursor: q.cursor } : {}),
        ...(q.node ? { owner: q.node } : {}),
        ...(q.state ? { state: q.state } : {}),
      });
      const nodes = await listNodesById(clients);
      return c.json(
        { items: page.items.map((vm) => toVmView(vm, nodes.get(vm.owner))), next: page.next ?? null },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: vmPath,
      tags,
      security: bearerSecurity,
      summary: 'Show a VM: owner, state, load, factors, target load, fence, digest, migration in flight',
      request: { params: IdParamSchema },
      responses: { 200: jsonResponse(VmSchema, 'The VM'), ...problemResponses(400, 401, 404) },
    }),
    async (c) => c.json(await view(await getVm(clients, c.req.valid('param').id)), 200),
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: vmPath,
      tags,
      security: bearerSecurity,
      summary: 'Change target load, pinned or anti-affinity group (null clears)',
      request: { params: IdParamSchema, body: jsonBody(PatchVmSchema) },
      responses: {
        200: jsonResponse(VmSchema, 'The VM after the change'),
        ...problemResponses(400, 401, 404, 409, 415),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const patch = c.req.valid('json');
      const vm = await getVm(clients, id);
      if (vm.state === 'DELETING') throw conflict(`vm ${id} is being deleted`);
      const updated = await patchVmAtFence(clients, id, vm.fence, patch, deps.clock()).catch(raced(id));
      return c.json(await view(updated), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: `${vmPath}/suspend`,
      tags,
      security: bearerSecurity,
      summary:
        'Ask the owner to write the whole state to the image and stop (RUNNING → SUSPENDING → SUSPENDED)',
      request: { params: IdParamSchema, body: jsonBody(EmptySchema, false) },
      responses: {
        202: jsonResponse(VmSchema, 'Suspension requested'),
        ...problemResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const vm = await getVm(clients, id);
      if (vm.state !== 'RUNNING' || vm.migration)
        throw conflict(
          `vm ${id} is ${describe(vm)}; only a RUNNING VM with no migration in flight can be suspended`,
        );
      const updated = await requestState(clients, id, vm.fence, 'SUSPENDING', deps.clock()).catch(raced(id));
      return c.json(await view(updated), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: `${vmPath}/resume`,
      tags,
      security: bearerSecurity,
      summary: 'Resume a SUSPENDED VM from its image, on `node` or the best placement',
      request: { params: IdParamSchema, body: jsonBody(ResumeSchema, false) },
      responses: {
        202: jsonResponse(VmSchema, 'Resumed: PENDING on its new owner'),
        ...problemResponses(400, 401, 404, 409, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const now = deps.clock();
      const vm = await getVm(clients, id);
      if (vm.state !== 'SUSPENDED')
        throw conflict(`vm ${id} is ${describe(vm)}; only a SUSPENDED VM can be resumed`);
      const placed = placementVmOf(vm);
      const target = choosePlacement(await listNodes(clients), placed, now, body.node, 'resume it');
      const updated = await resumeVm(clients, id, vm.fence, target, now).catch(raced(id));
      return c.json(await view(updated), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: `${vmPath}/restart`,
      tags,
      security: bearerSecurity,
      summary:
        'Give a FAILED VM a fresh try from its last image (failures forgotten), on `node`, its owner if it fits, or the least-loaded live node',
      request: { params: IdParamSchema, body: jsonBody(ResumeSchema, false) },
      responses: {
        202: jsonResponse(VmSchema, 'Restarted: PENDING on its owner'),
        ...problemResponses(400, 401, 404, 409, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const now = deps.clock();
      const vm = await getVm(clients, id);
      if (vm.state !== 'FAILED')
        throw conflict(`vm ${id} is ${describe(vm)}; only a FAILED VM can be restarted`);
      const records = await listNodes(clients);
      const placed = placementVmOf(vm);
      // Its own node first: a failure is the guest's doing, not the node's.
      const own = records.find((n) => n.id === vm.owner);
      const stays =
        body.node === undefined &&
        own !== undefined &&
        placementExclusion(placementNode(own), placed, now) === undefined;
      const target = stays ? vm.owner : choosePlacement(records, placed, now, body.node, 'restart it');
      const updated = await restartVm(clients, id, vm.fence, target, now).catch(raced(id));
      return c.json(await view(updated), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: `${vmPath}/migrate`,
      tags,
      security: bearerSecurity,
      summary: "Order a live migration to a node, or to 'auto' (the best placement other than the owner)",
      request: { params: IdParamSchema, body: jsonBody(MigrateSchema) },
      responses: {
        202: jsonResponse(VmSchema, 'Migration ordered; follow it with GET /v1/vms/{id}'),
        ...problemResponses(400, 401, 404, 409, 415, 422),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const { to } = c.req.valid('json');
      const now = deps.clock();
      const vm = await getVm(clients, id);
      if (vm.state !== 'RUNNING' || vm.migration)
        throw conflict(
          `vm ${id} is ${describe(vm)}; only a RUNNING VM with no migration in flight can migrate`,
        );
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
      return c.json(await view(updated), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: vmPath,
      tags,
      security: bearerSecurity,
      summary:
        'Delete a VM: a running one is stopped by its owner (202); a suspended or failed one goes at once (204)',
      request: { params: IdParamSchema },
      responses: {
        202: jsonResponse(VmSchema, 'Deletion requested; the owner stops the VM and removes its image'),
        204: { description: 'Deleted, with its images' },
        ...problemResponses(400, 401, 404, 409),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const vm = await getVm(clients, id);
      if (vm.state === 'DELETING') return c.json(await view(vm), 202);
      if (vm.state === 'SUSPENDED' || vm.state === 'FAILED') {
        // The item goes first: a concurrent resume then fails on the fence instead of finding no image.
        await deleteVmItem(clients, id, vm.fence, vm.state).catch(raced(id));
        await images.deleteVmImages(id).catch(deps.logError);
        return c.body(null, 204);
      }
      if ((vm.state !== 'RUNNING' && vm.state !== 'PENDING') || vm.migration)
        throw conflict(`vm ${id} is ${describe(vm)}; wait for it to settle, then delete it`);
      const updated = await requestState(clients, id, vm.fence, 'DELETING', deps.clock()).catch(raced(id));
      return c.json(await view(updated), 202);
    },
  );

  return app;
}

function describe(vm: VmRecord): string {
  if (vm.migration) return `${vm.state} with migration ${vm.migration.id} to ${vm.migration.to} in flight`;
  return vm.state;
}
