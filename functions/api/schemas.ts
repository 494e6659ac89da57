// Zod schemas shared by several route modules: they validate requests and, through
// @hono/zod-openapi, are the OpenAPI document.
import { z } from '@hono/zod-openapi';

const factor = z.number().finite();

export const LoadFactorsSchema = z
  .object({
    cpu: factor,
    io: factor,
    mem: factor,
    paging: factor.optional(),
    net: factor.optional(),
  })
  .openapi('LoadFactors');

const weight = z.number().finite().min(0).max(1000);

export const WeightsSchema = z
  .object({
    cpu: weight,
    io: weight,
    mem: weight,
    paging: weight.optional(),
    net: weight.optional(),
  })
  .strict()
  .openapi('Weights', { description: 'Fig. 4 weights of a node: load = Σ weight × factor.' });

const hint = z.number().finite().gt(0).max(100);

export const HintsSchema = z
  .object({
    cpu: hint.optional(),
    io: hint.optional(),
    mem: hint.optional(),
    paging: hint.optional(),
    net: hint.optional(),
  })
  .strict()
  .openapi('Hints', {
    description: 'Performance-monitor multipliers on the weights (effective weight = weight × hint).',
  });

export const VmStateSchema = z.enum(['PENDING', 'RUNNING', 'SUSPENDING', 'SUSPENDED', 'DELETING', 'FAILED']);

export const RestartPolicySchema = z
  .object({
    kind: z.enum(['never', 'on-failure']),
    maxRetries: z.number().int().min(0).max(100).optional(),
  })
  .strict()
  .openapi('RestartPolicy', {
    description:
      'What a failure of the guest itself (trap, timeout, memory limit, no usable image) does: `never` (the default) leaves the VM FAILED; `on-failure` restarts it on its node after 10 s, 20 s, 40 s … (at most 5 min), up to `maxRetries` (default 5) times.',
  });

export const ImageRecoverySchema = z
  .object({
    broken: z.string(),
    why: z.string(),
    restored: z.string(),
    lostSeconds: z.number(),
    at: z.number(),
  })
  .openapi('ImageRecovery', {
    description: 'The last restore that skipped a broken image, and the guest time it lost.',
  });

export const MigrationSchema = z
  .object({
    id: z.string(),
    from: z.string(),
    to: z.string(),
    phase: z.enum(['ORDERED', 'IMAGE_READY']),
    deadline: z.number(),
    orderedAt: z.number(),
    origin: z.string(),
  })
  .openapi('MigrationInFlight');

export const GuestSchema = z
  .object({
    kind: z.string(),
    params: z.record(z.string(), z.number()).optional(),
    series: z.array(z.number()).optional(),
  })
  .openapi('Guest');

/** A number or null, with what it means. */
const nullableNumber = (description: string) => z.number().nullable().openapi({ description });

export const VmSchema = z
  .object({
    id: z.string(),
    owner: z.string(),
    state: VmStateSchema,
    guest: GuestSchema,
    memPages: z.number().int(),
    targetLoad: nullableNumber(
      'Programmed target load (patent Fig. 7): used by selection and as the sharing weight; not a limit.',
    ),
    cpuLimit: nullableNumber('Cores the VM may use at most, enforced by its node’s kernel.'),
    pinned: z.boolean(),
    group: z.string().nullable(),
    fence: z.number().int(),
    digest: z.string().nullable(),
    load: nullableNumber("Load under the owner's weights, from its last report."),
    factors: LoadFactorsSchema.nullable(),
    reportedAt: z.number().nullable(),
    migration: MigrationSchema.nullable(),
    moves: z.number().int(),
    cooldownUntil: z.number().nullable(),
    lastMovedAt: z.number().nullable(),
    restartPolicy: RestartPolicySchema,
    reason: z
      .string()
      .nullable()
      .openapi({ description: 'Why the guest last failed, e.g. `timeout in run after 500 ms`.' }),
    failures: z.number().int().openapi({ description: 'Failures since creation or the last restart.' }),
    retryAt: nullableNumber('Backing off after a failure until then.'),
    recovery: ImageRecoverySchema.nullable(),
    createdAt: z.number(),
    updatedAt: z.number(),
  })
  .openapi('Vm');

export type VmView = z.infer<typeof VmSchema>;

export const IdParamSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .max(128)
      .openapi({ param: { name: 'id', in: 'path' } }),
  })
  .strict();

/** A JSON body (as the OpenAPI request entry). */
export const jsonBody = <T extends z.ZodType>(schema: T, required = true) => ({
  required,
  content: { 'application/json': { schema } },
});

/** A JSON success response (as the OpenAPI response entry). */
export const jsonResponse = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Every item of a kind, in one answer. */
export const listSchema = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item) });

/** One page of items and the cursor of the next page (null on the last). */
export const pageSchema = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next: z.string().nullable() });

/** The query of a paged list: how many items (1 to `max`, else `fallback`), and the cursor to go on from. */
export const pageQuery = (max: number, fallback: number) => ({
  limit: z.coerce.number().int().min(1).max(max).default(fallback),
  cursor: z.string().max(2048).optional(),
});

/** A page query as storage takes it. */
export const pageOptions = ({ limit, cursor }: { limit: number; cursor?: string | undefined }) => ({
  limit,
  ...(cursor ? { cursor } : {}),
});

type StoredPage<T> = { items: T[]; next?: string | undefined };

/** A page from storage as the API answers it, each item through `view` when given. */
export function pageAnswer<T>(page: StoredPage<T>): { items: T[]; next: string | null };
export function pageAnswer<T, U>(
  page: StoredPage<T>,
  view: (item: T) => U,
): { items: U[]; next: string | null };
export function pageAnswer<T, U>(page: StoredPage<T>, view?: (item: T) => U) {
  return { items: view ? page.items.map(view) : page.items, next: page.next ?? null };
}

const ReportedVmSchema = z.object({
  load: z.number(),
  factors: LoadFactorsSchema,
  fence: z.number().int(),
  busy: z.boolean(),
  digest: z.string(),
});

export const NodeSchema = z
  .object({
    id: z.string(),
    live: z.boolean().openapi({ description: 'Its lease has not lapsed.' }),
    leaseUntil: z.number(),
    draining: z.boolean(),
    capacity: z.number(),
    memCapacityPages: z.number().int(),
    memUsedPages: z.number().int(),
    weights: WeightsSchema,
    hints: HintsSchema.nullable(),
    effectiveWeights: WeightsSchema.openapi({ description: 'weights × hints' }),
    loadOverride: z.number().nullable(),
    load: z.number().openapi({ description: 'loadOverride if set, else the last report total.' }),
    report: z
      .object({
        at: z.number(),
        total: z.number(),
        vmCount: z.number().int(),
        steal: z.number(),
        utilisation: z.number(),
        vms: z.record(z.string(), ReportedVmSchema).optional(),
      })
      .nullable(),
    claim: z.object({ run: z.string(), until: z.number() }).nullable(),
    labels: z.record(z.string(), z.string()),
    registeredAt: z.number(),
    updatedAt: z.number(),
  })
  .openapi('Node');

export type NodeView = z.infer<typeof NodeSchema>;
