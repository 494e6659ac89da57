// Guest modules: upload a wasm module (validated against the guest ABI) and list them. A name is
// registered once: VM images refer to their module by name, so its code must never change.
import { type RouteHandler, z } from '@hono/zod-openapi';
import { MODULE_NAME } from '../../../shared/domain/guests.ts';
import { type GuestExports, validateGuestModule } from '../../../shared/guest-abi.ts';
import { checkModuleResources } from '../../../shared/guest-params.ts';
import {
  createImageStore,
  type ImageStore,
  moduleObjectKey,
  sha256,
} from '../../../shared/storage/image-store.ts';
import {
  forgetModule,
  listModules,
  type ModuleRecord,
  moduleRegistry,
} from '../../../shared/storage/modules.ts';
import type { ApiDeps } from '../deps.ts';
import { problemResponses, unprocessable } from '../problem.ts';
import { registerOnce } from '../register-once.ts';
import { newRouter, routesOf } from '../router.ts';
import { jsonResponse, listSchema } from '../schemas.ts';

const moduleName = z
  .string()
  .regex(MODULE_NAME, { message: 'name must be 1–64 of A-Z a-z 0-9 . _ - (not starting with . _ -)' });

const UploadJsonSchema = z
  .object({ name: moduleName, wasm: z.base64().min(1).openapi({ description: 'The module bytes, base64.' }) })
  .strict()
  .openapi('ModuleUpload');

const UploadQuerySchema = z
  .object({ name: moduleName.optional().openapi({ description: 'Required with an application/wasm body.' }) })
  .strict();

const ModuleSchema = z
  .object({
    name: z.string(),
    sha256: z.string(),
    bytes: z.number().int(),
    key: z.string(),
    exports: z.object({
      functions: z.array(z.string()),
      globals: z.array(z.object({ name: z.string(), type: z.string(), mutable: z.boolean() })),
      params: z.array(z.string()),
      memory: z.object({ initialPages: z.number().int(), maximumPages: z.number().int().optional() }),
      imports: z.array(z.string()),
    }),
    createdAt: z.number(),
  })
  .openapi('Module');

const route = routesOf('Modules');

const registerModuleRoute = route({
  method: 'post',
  path: '/v1/modules',
  operationId: 'registerModule',
  summary:
    'Register a guest module (application/wasm with ?name=, or JSON with base64), checked against the guest ABI',
  request: {
    query: UploadQuerySchema,
    body: {
      required: false,
      content: {
        'application/json': { schema: UploadJsonSchema },
        'application/wasm': { schema: z.string().openapi({ format: 'binary' }) },
      },
    },
  },
  responses: {
    201: jsonResponse(ModuleSchema, 'Registered'),
    200: jsonResponse(ModuleSchema, 'Already registered with these exact bytes'),
    ...problemResponses(400, 401, 409, 415, 422),
  },
});

export function moduleRoutes(deps: ApiDeps) {
  const { clients } = deps;
  const images = createImageStore(clients);
  return newRouter()
    .openapi(registerModuleRoute, registerModuleHandler(deps, images))
    .openapi(
      route({
        method: 'get',
        path: '/v1/modules',
        operationId: 'listModules',
        summary: 'List registered guest modules',
        responses: {
          200: jsonResponse(listSchema(ModuleSchema), 'Every registered module'),
          ...problemResponses(401),
        },
      }),
      async (c) => c.json({ items: await listModules(clients) }, 200),
    );
}

/** POST /v1/modules: checks the bytes against the guest ABI, claims the name, then stores the bytes. */
function registerModuleHandler(deps: ApiDeps, images: ImageStore): RouteHandler<typeof registerModuleRoute> {
  const { clients } = deps;
  return async (c) => {
    let name: string;
    let bytes: Uint8Array;
    if ((c.req.header('content-type') ?? '').toLowerCase().startsWith('application/wasm')) {
      const query = c.req.valid('query');
      if (!query.name) throw unprocessable('an application/wasm upload needs ?name=<module name>');
      name = query.name;
      bytes = new Uint8Array(await c.req.arrayBuffer());
    } else {
      const body = c.req.valid('json');
      if (typeof body !== 'object' || !('name' in body))
        throw unprocessable('send the module as application/wasm (?name=) or JSON {name, wasm}');
      name = body.name;
      bytes = new Uint8Array(Buffer.from(body.wasm, 'base64'));
    }
    const checked = validateGuestModule(bytes);
    if (!checked.ok)
      throw unprocessable(
        `module ${name} does not follow the guest ABI: ${checked.problems[0]}`,
        checked.problems.map((message) => ({ path: 'module', message })),
      );
    const resources = checkModuleResources(checked.exports);
    if (resources.length)
      throw unprocessable(
        `module ${name} declares resources a VM cannot have: ${resources[0]}`,
        resources.map((message) => ({ path: 'module', message })),
      );
    const unrecordable = recordProblems(checked.exports);
    if (unrecordable.length)
      throw unprocessable(
        `module ${name} cannot be recorded: ${unrecordable[0]}`,
        unrecordable.map((message) => ({ path: 'module', message })),
      );
    const record: ModuleRecord = {
      name,
      sha256: sha256(bytes),
      bytes: bytes.byteLength,
      key: moduleObjectKey(name),
      exports: checked.exports,
      createdAt: deps.clock(),
    };
    const registered = await registerOnce(clients, moduleRegistry, record, {
      differs: 'different bytes',
      store: () => images.putModule(name, bytes),
      release: [() => forgetModule(clients, name)],
      logError: deps.logError,
    });
    return c.json(registered.record, registered.status);
  };
}

/** Exports a module may have, and the bytes of each one's name. */
const MAX_EXPORTS = 1024;
const MAX_EXPORT_NAME_BYTES = 128;

/**
 * The module's item lists its exports, and DynamoDB keeps an item to 400 KB: 8,000 long export names
 * (or one of 500 KB) failed the write as a 500. The guest ABI needs a handful, plus at most 64 params.
 */
function recordProblems(exports: GuestExports): string[] {
  const names = [...exports.functions, ...exports.globals.map((g) => g.name)];
  const problems: string[] = [];
  if (names.length > MAX_EXPORTS)
    problems.push(`it exports ${names.length} functions and globals; at most ${MAX_EXPORTS}`);
  const long = names.find((n) => Buffer.byteLength(n) > MAX_EXPORT_NAME_BYTES);
  if (long !== undefined)
    problems.push(`export "${long.slice(0, 40)}…" has a name over ${MAX_EXPORT_NAME_BYTES} bytes`);
  return problems;
}
