// The VM routes as OpenAPI declarations: request schemas and one createRoute per operation. The
// handlers are in vms.ts; these are what the OpenAPI document and the typed client are made of.
import { z } from '@hono/zod-openapi';
import { MAX_VM_MEM_PAGES } from '../../../shared/guest-params.ts';
import { GUEST_KIND, GUEST_KINDS_TEXT } from '../../../shared/qemu-images.ts';
import { problemResponses } from '../problem.ts';
import { routesOf } from '../router.ts';
import {
  IdParamSchema,
  jsonBody,
  jsonResponse,
  pageQuery,
  pageSchema,
  RestartPolicySchema,
  VmSchema,
  VmStateSchema,
} from '../schemas.ts';

/**
 * Steps of a trace guest's series. The series lives in the VM's item, and the create's answer (which
 * repeats it) in its Idempotency-Key record: at 17 digits a step, 10,000 keep both under DynamoDB's
 * 400 KB item limit (100,000 did not, and the write failed as a 500). A month of 5-minute steps is 8,640.
 */
const MAX_SERIES_STEPS = 10_000;

const nodeId = z.string().min(1).max(128);
const targetLoad = z.number().finite().min(0).max(1_000_000);
const group = z.string().min(1).max(128);
const cpuLimit = z.number().finite().gt(0).max(1024).openapi({
  description: 'Cores the VM may use at most (e.g. 0.5), enforced by the kernel. Not the target load.',
});

export const CreateVmSchema = z
  .object({
    guest: z
      .string()
      .regex(GUEST_KIND, { message: `guest must be ${GUEST_KINDS_TEXT}` })
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
    memPages: z
      .number()
      .int()
      .min(1)
      .max(MAX_VM_MEM_PAGES)
      .optional()
      .openapi({ description: '64 KiB pages.' }),
    group: group
      .optional()
      .openapi({ description: 'Anti-affinity group: no two VMs of a group share a node.' }),
    pinned: z.boolean().optional(),
    params: z.record(z.string().min(1).max(64), z.number().finite()).optional(),
    series: z.array(z.number().finite().min(0).max(100)).min(1).max(MAX_SERIES_STEPS).optional().openapi({
      description: 'For the trace guest: utilisation per step, in percent.',
    }),
    restartPolicy: RestartPolicySchema.optional(),
  })
  .strict()
  .openapi('CreateVm');

export const PatchVmSchema = z
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
    ...pageQuery(500, 50),
  })
  .strict();

const VmPageSchema = pageSchema(VmSchema).openapi('VmPage');

const vmPath = '/v1/vms/{id}';

const route = routesOf('VMs');

export const launchVmRoute = route({
  method: 'post',
  path: '/v1/vms',
  operationId: 'createVm',
  summary: 'Launch a VM from a built-in guest, a registered module, or a qemu image (qemu:<image>)',
  request: { body: jsonBody(CreateVmSchema) },
  responses: {
    201: jsonResponse(VmSchema, 'The new VM (PENDING until its node starts it)'),
    ...problemResponses(400, 401, 404, 409, 415, 422),
  },
});

export const listVmsRoute = route({
  method: 'get',
  path: '/v1/vms',
  operationId: 'listVms',
  summary: 'List VMs, optionally by node and state, a page at a time',
  description:
    'Pages follow `next` as `cursor`. A filtered page may hold fewer than `limit` items (even none) while `next` is set.',
  request: { query: ListQuerySchema },
  responses: { 200: jsonResponse(VmPageSchema, 'One page of VMs'), ...problemResponses(400, 401) },
});

export const getVmRoute = route({
  method: 'get',
  path: vmPath,
  operationId: 'getVm',
  summary: 'Show a VM: owner, state, load, factors, target load, fence, digest, migration in flight',
  request: { params: IdParamSchema },
  responses: { 200: jsonResponse(VmSchema, 'The VM'), ...problemResponses(400, 401, 404) },
});

export const patchVmRoute = route({
  method: 'patch',
  path: vmPath,
  operationId: 'patchVm',
  summary: 'Change target load, pinned or anti-affinity group (null clears)',
  request: { params: IdParamSchema, body: jsonBody(PatchVmSchema) },
  responses: {
    200: jsonResponse(VmSchema, 'The VM after the change'),
    ...problemResponses(400, 401, 404, 409, 415),
  },
});

export const suspendVmRoute = route({
  method: 'post',
  path: `${vmPath}/suspend`,
  operationId: 'suspendVm',
  summary: 'Ask the owner to write the whole state to the image and stop (RUNNING → SUSPENDING → SUSPENDED)',
  request: { params: IdParamSchema, body: jsonBody(EmptySchema, false) },
  responses: {
    202: jsonResponse(VmSchema, 'Suspension requested'),
    ...problemResponses(400, 401, 404, 409),
  },
});

export const resumeVmRoute = route({
  method: 'post',
  path: `${vmPath}/resume`,
  operationId: 'resumeVm',
  summary: 'Resume a SUSPENDED VM from its image, on `node` or the best placement',
  request: { params: IdParamSchema, body: jsonBody(ResumeSchema, false) },
  responses: {
    202: jsonResponse(VmSchema, 'Resumed: PENDING on its new owner'),
    ...problemResponses(400, 401, 404, 409, 422),
  },
});

export const restartVmRoute = route({
  method: 'post',
  path: `${vmPath}/restart`,
  operationId: 'restartVm',
  summary:
    'Give a FAILED VM a fresh try from its last image (failures forgotten), on `node`, its owner if it fits, or the least-loaded live node',
  request: { params: IdParamSchema, body: jsonBody(ResumeSchema, false) },
  responses: {
    202: jsonResponse(VmSchema, 'Restarted: PENDING on its owner'),
    ...problemResponses(400, 401, 404, 409, 422),
  },
});

export const migrateVmRoute = route({
  method: 'post',
  path: `${vmPath}/migrate`,
  operationId: 'migrateVm',
  summary: "Order a live migration to a node, or to 'auto' (the best placement other than the owner)",
  request: { params: IdParamSchema, body: jsonBody(MigrateSchema) },
  responses: {
    202: jsonResponse(VmSchema, 'Migration ordered; follow it with GET /v1/vms/{id}'),
    ...problemResponses(400, 401, 404, 409, 415, 422),
  },
});

export const deleteVmRoute = route({
  method: 'delete',
  path: vmPath,
  operationId: 'deleteVm',
  summary:
    'Delete a VM: a running one is stopped by its owner (202); a suspended or failed one goes at once (204)',
  request: { params: IdParamSchema },
  responses: {
    202: jsonResponse(VmSchema, 'Deletion requested; the owner stops the VM and removes its image'),
    204: { description: 'Deleted, with its images' },
    ...problemResponses(400, 401, 404, 409),
  },
});
