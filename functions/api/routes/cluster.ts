// The cluster at a glance (counts, imbalance, last run) and the unauthenticated health check.
import { z } from '@hono/zod-openapi';
import { isLive } from '../../../shared/domain/placement.ts';
import { countedImbalance } from '../../../shared/domain/stats.ts';
import { listNodes } from '../../../shared/storage/nodes.ts';
import { listRuns } from '../../../shared/storage/runs.ts';
import { listAllVms } from '../../../shared/storage/vms.ts';
import type { ApiDeps } from '../deps.ts';
import { problemResponses } from '../problem.ts';
import { newRouter, routesOf } from '../router.ts';
import { jsonResponse, VmStateSchema } from '../schemas.ts';
import { nodeLoadOf } from '../views.ts';
import { RunSchema } from './balance.ts';

const ClusterSchema = z
  .object({
    nodes: z.object({ total: z.number().int(), live: z.number().int(), draining: z.number().int() }),
    vms: z.object({
      total: z.number().int(),
      byState: z.record(VmStateSchema, z.number().int()),
      migrating: z.number().int(),
    }),
    imbalance: z
      .object({
        cv: z.number().openapi({
          description: 'Coefficient of variation of the loads of live nodes that are not draining.',
        }),
        maxOverMean: z.number(),
        maxLoad: z.number(),
        mean: z.number(),
      })
      .openapi({ description: "Over live, non-draining nodes' loads (override, else last report total)." }),
    loads: z.record(z.string(), z.number()),
    lastRun: RunSchema.nullable().openapi({ description: 'The newest balancing run record, if any.' }),
  })
  .openapi('Cluster');

const route = routesOf('Cluster');

export function clusterRoutes(deps: ApiDeps) {
  const { clients } = deps;
  return newRouter()
    .openapi(
      route({
        method: 'get',
        path: '/v1/cluster',
        operationId: 'getCluster',
        summary:
          'Node and VM counts, imbalance (CV and max/mean over live, non-draining nodes), last balancing run',
        responses: { 200: jsonResponse(ClusterSchema, 'The cluster summary'), ...problemResponses(401) },
      }),
      async (c) => {
        const now = deps.clock();
        const [nodes, vms, runs] = await Promise.all([
          listNodes(clients),
          listAllVms(clients),
          listRuns(clients, { limit: 1 }),
        ]);
        const live = nodes.filter((n) => isLive(n, now));
        const byState = { PENDING: 0, RUNNING: 0, SUSPENDING: 0, SUSPENDED: 0, DELETING: 0, FAILED: 0 };
        for (const vm of vms) byState[vm.state] += 1;
        return c.json(
          {
            nodes: {
              total: nodes.length,
              live: live.length,
              draining: nodes.filter((n) => n.draining).length,
            },
            vms: { total: vms.length, byState, migrating: vms.filter((vm) => vm.migration).length },
            imbalance: countedImbalance(live.map((n) => ({ load: nodeLoadOf(n), draining: n.draining }))),
            loads: Object.fromEntries(live.map((n) => [n.id, nodeLoadOf(n)])),
            lastRun: runs.items[0] ?? null,
          },
          200,
        );
      },
    )
    .openapi(
      route.open({
        method: 'get',
        path: '/healthz',
        operationId: 'health',
        summary: 'Liveness of the API process (no auth, no storage access)',
        responses: { 200: jsonResponse(z.object({ ok: z.literal(true) }), 'The API is up') },
      }),
      (c) => c.json({ ok: true as const }, 200),
    );
}
