// The JSON scenario file format: parsed and validated with zod; errors name the field.
import { z } from 'zod';
import { balancingConfigSchema } from '../domain/config.ts';
import { vmLoad } from '../domain/load.ts';
import type { NodeInfo, VmInfo } from '../domain/types.ts';
import type { Scenario } from './types.ts';

// A VM's load factors and a node's weights: the same five non-negative numbers (Fig. 4).
const fiveFactors = z.object({
  cpu: z.number().min(0),
  io: z.number().min(0),
  mem: z.number().min(0),
  paging: z.number().min(0).optional(),
  net: z.number().min(0).optional(),
});
const factors = fiveFactors;
const weights = fiveFactors;

export const scenarioFileSchema = z
  .object({
    name: z.string().min(1).optional(),
    nodes: z
      .array(
        z
          .object({
            id: z.string().min(1),
            capacity: z.number().positive().optional(),
            weights: weights.optional(),
            draining: z.boolean().optional(),
            memCapacityPages: z.number().int().positive().optional(),
          })
          .strict(),
      )
      .min(1),
    vms: z.array(
      z
        .object({
          id: z.string().min(1),
          node: z.string().min(1),
          factors,
          targetLoad: z.number().min(0).optional(),
          memPages: z.number().int().min(0).optional(),
          pinned: z.boolean().optional(),
          group: z.string().min(1).optional(),
        })
        .strict(),
    ),
    config: balancingConfigSchema.partial().optional(),
    churn: z
      .object({
        arrive: z.number().int().min(0),
        leave: z.number().int().min(0),
        load: z.object({ min: z.number().min(0), max: z.number().min(0) }).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** A scenario file that does not validate; the message names the file and the field. */
export class InvalidScenario extends Error {
  override name = 'InvalidScenario';
}

const DEFAULT_WEIGHTS = { cpu: 1, io: 1, mem: 1 };

/** Parse and validate a scenario file's JSON text; `source` names it in errors. */
export function parseScenario(text: string, source: string): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new InvalidScenario(`${source}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = scenarioFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue ? formatPath(issue.path) : '';
    throw new InvalidScenario(`${source}: ${path || '(top level)'}: ${issue?.message ?? 'invalid'}`);
  }
  const file = parsed.data;
  const nodeIds = new Set<string>();
  file.nodes.forEach((n, i) => {
    if (nodeIds.has(n.id))
      throw new InvalidScenario(`${source}: nodes[${i}].id: duplicate node id "${n.id}"`);
    nodeIds.add(n.id);
  });
  const vmIds = new Set<string>();
  file.vms.forEach((v, i) => {
    if (vmIds.has(v.id)) throw new InvalidScenario(`${source}: vms[${i}].id: duplicate VM id "${v.id}"`);
    vmIds.add(v.id);
    if (!nodeIds.has(v.node)) throw new InvalidScenario(`${source}: vms[${i}].node: no node "${v.node}"`);
  });
  const vms: VmInfo[] = file.vms.map((v) => ({
    id: v.id,
    node: v.node,
    factors: v.factors,
    memPages: v.memPages ?? Math.max(1, Math.round(v.factors.mem * 16_384)),
    pinned: v.pinned ?? false,
    ...(v.targetLoad !== undefined ? { targetLoad: v.targetLoad } : {}),
    ...(v.group !== undefined ? { group: v.group } : {}),
  }));
  const nodes: NodeInfo[] = file.nodes.map((n) => ({
    id: n.id,
    weights: n.weights ?? DEFAULT_WEIGHTS,
    capacity: n.capacity ?? 0,
    memCapacityPages: n.memCapacityPages ?? Number.MAX_SAFE_INTEGER,
    draining: n.draining ?? false,
  }));
  // Nodes without a capacity get 1.5 × the mean node load, so thresholds on capacity mean something.
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const total = vms.reduce((sum, v) => sum + vmLoad(v.factors, (byId.get(v.node) as NodeInfo).weights), 0);
  const fallback = Math.max(1e-9, (1.5 * total) / nodes.length);
  for (const n of nodes) if (n.capacity === 0) n.capacity = fallback;
  const scenario: Scenario = { name: file.name ?? source, nodes, vms };
  if (file.config) scenario.config = file.config;
  if (file.churn) scenario.churn = { ...file.churn, load: file.churn.load ?? { min: 0.5, max: 1.5 } };
  return scenario;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => {
    if (typeof key === 'number') return `${out}[${key}]`;
    return out ? `${out}.${String(key)}` : String(key);
  }, '');
}
