// Nodes: list, show, and the administrator's changes (weights, drain, load override, hints).
import { z } from '@hono/zod-openapi';
import { getNode, listNodes, patchNode } from '../../../shared/storage/nodes.ts';
import type { ApiDeps } from '../deps.ts';
import { problemResponses } from '../problem.ts';
import { newRouter, routesOf } from '../router.ts';
import {
  HintsSchema,
  IdParamSchema,
  jsonBody,
  jsonResponse,
  listSchema,
  NodeSchema,
  WeightsSchema,
} from '../schemas.ts';
import { toNodeView } from '../views.ts';

const PatchNodeSchema = z
  .object({
    weights: WeightsSchema.partial()
      .strict()
      .optional()
      .openapi({ description: 'Merged into the current weights.' }),
    draining: z
      .boolean()
      .optional()
      .openapi({ description: 'A draining node gives its VMs away and takes none.' }),
    loadOverride: z.number().finite().min(0).max(1_000_000).nullable().optional().openapi({
      description: "Overrides the node's measured load for balancing; null clears it.",
    }),
    hints: HintsSchema.optional().openapi({
      description: 'Replaces the hints; effective weights = weights × hints ({} resets them to 1).',
    }),
  })
  .strict()
  .refine((patch) => Object.values(patch).some((value) => value !== undefined), {
    message: 'give at least one of weights, draining, loadOverride, hints',
  })
  .openapi('PatchNode');

const route = routesOf('Nodes');

export function nodeRoutes(deps: ApiDeps) {
  const { clients } = deps;
  return newRouter()
    .openapi(
      route({
        method: 'get',
        path: '/v1/nodes',
        operationId: 'listNodes',
        summary: 'List nodes with their weights, liveness and last reported load',
        responses: {
          200: jsonResponse(listSchema(NodeSchema), 'Every registered node'),
          ...problemResponses(401),
        },
      }),
      async (c) => {
        const now = deps.clock();
        return c.json({ items: (await listNodes(clients)).map((n) => toNodeView(n, now, false)) }, 200);
      },
    )
    .openapi(
      route({
        method: 'get',
        path: '/v1/nodes/{id}',
        operationId: 'getNode',
        summary: "Show a node, with its last report's per-VM entries",
        request: { params: IdParamSchema },
        responses: { 200: jsonResponse(NodeSchema, 'The node'), ...problemResponses(400, 401, 404) },
      }),
      async (c) =>
        c.json(toNodeView(await getNode(clients, c.req.valid('param').id), deps.clock(), true), 200),
    )
    .openapi(
      route({
        method: 'patch',
        path: '/v1/nodes/{id}',
        operationId: 'patchNode',
        summary: 'Change weights, drain or undrain, set or clear a load override, set performance hints',
        request: { params: IdParamSchema, body: jsonBody(PatchNodeSchema) },
        responses: {
          200: jsonResponse(NodeSchema, 'The node after the change'),
          ...problemResponses(400, 401, 404, 415),
        },
      }),
      async (c) => {
        const { id } = c.req.valid('param');
        const body = c.req.valid('json');
        const current = await getNode(clients, id);
        const now = deps.clock();
        const updated = await patchNode(
          clients,
          id,
          {
            ...(body.draining !== undefined ? { draining: body.draining } : {}),
            ...(body.loadOverride !== undefined ? { loadOverride: body.loadOverride } : {}),
            ...(body.hints ? { hints: body.hints } : {}),
            ...(body.weights ? { weights: { ...current.weights, ...body.weights } } : {}),
          },
          now,
        );
        return c.json(toNodeView(updated, now, true), 200);
      },
    );
}
