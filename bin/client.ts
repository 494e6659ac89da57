// The typed client of the Seesaw HTTP API for the CLI (and scripts): Hono's `hc` over the API
// app's own type (functions/api/app.ts), so every path, request body, query and response here
// comes from the routes' zod schemas, the same ones that make /openapi.json. Only types cross
// over from the API: the bundle carries hono/client, not the app. Each request carries a bearer
// token (local cluster) or a SigV4 signature (deployed stack); failures are errors with a
// one-line message.
import { randomUUID } from 'node:crypto';
import { type ClientResponse, hc, type InferRequestType, type InferResponseType } from 'hono/client';
import type { SuccessStatusCode } from 'hono/utils/http-status';
import type { ApiApp } from '../functions/api/app.ts';
import { type Connection, isLoopback } from './connection.ts';
import type { Signer } from './sigv4.ts';

export { type Connection, type ConnectionOptions, resolveConnection } from './connection.ts';

/** The API as Hono's client sees it: `api.v1.vms[':id'].$get(...)` and so on. */
type Api = ReturnType<typeof hc<ApiApp>>;

// The wire types, read off the operations (operationId in comments).
/** getVm */
export type VmView = InferResponseType<Api['v1']['vms'][':id']['$get'], 200>;
/** createVm */
export type CreateVmRequest = InferRequestType<Api['v1']['vms']['$post']>['json'];
/** patchVm */
export type VmPatch = InferRequestType<Api['v1']['vms'][':id']['$patch']>['json'];
/** getNode */
export type NodeView = InferResponseType<Api['v1']['nodes'][':id']['$get'], 200>;
/** patchNode */
export type NodePatch = InferRequestType<Api['v1']['nodes'][':id']['$patch']>['json'];
/** getPlan */
export type Plan = InferResponseType<Api['v1']['plans'][':id']['$get'], 200>;
/** registerImage */
export type ImageRegistration = InferRequestType<Api['v1']['images']['$post']>['json'];
/** getImage */
export type ImageView = InferResponseType<Api['v1']['images'][':name']['$get'], 200>;
/** listRuns */
export type RunRecord = InferResponseType<Api['v1']['runs']['$get'], 200>['items'][number];

interface Problem {
  title?: string;
  status?: number;
  detail?: string;
  errors?: { path: string; message: string }[];
}

/** The API answered with a problem. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.title ?? 'error'}: ${problem.detail ?? 'no detail'}`);
  }
}

/** API Gateway's IAM authorizer refused the signature or the principal: one line on what to check. */
function iamRefused(connection: Connection & { auth: 'iam' }, body: unknown): Error {
  const message = (body as { message?: string; Message?: string } | undefined)?.message ?? 'Forbidden';
  return new Error(
    `403 ${message}: the API at ${connection.api} refused the SigV4-signed request; your AWS credentials (check \`aws sts get-caller-identity\`) need execute-api:Invoke on it, in region ${connection.region}`,
  );
}

/** The body of a success answer, typed by the operation's success responses (204 → undefined). */
type Answer<R> =
  R extends ClientResponse<infer T, infer S, infer F>
    ? S extends SuccessStatusCode
      ? F extends 'json'
        ? T
        : undefined
      : never
    : never;

/** A path segment: hc puts path params in as they are. */
function segment(id: string): string {
  if (!id) throw new Error('an id must not be empty');
  return encodeURIComponent(id);
}

export type SeesawClient = ReturnType<typeof createClient>;

/** Sends one operation through hc and reads its answer. */
type Call = <R extends ClientResponse<unknown, number, string>>(
  send: (api: Api) => Promise<R>,
) => Promise<Answer<R>>;

type SignerFor = (region: string) => Promise<Signer>;

/** `connection` may be a function, resolved once on the first request (so flags are read lazily). */
export function createClient(
  connection: Connection | (() => Promise<Connection>),
  fetchImpl: typeof fetch = fetch,
  signer?: Signer,
) {
  let resolved: Promise<Connection> | undefined;
  const connect = () => {
    resolved ??= typeof connection === 'function' ? connection() : Promise.resolve(connection);
    return resolved;
  };
  let sign: Promise<Signer> | undefined;
  const signerFor: SignerFor = (region) => {
    sign ??= signer
      ? Promise.resolve(signer)
      : import('./sigv4.ts').then(({ createSigner }) => createSigner(region));
    return sign;
  };
  let api: Promise<{ connection: Connection; api: Api }> | undefined;
  const client = () => {
    api ??= connect().then((c) => ({
      connection: c,
      api: hc<ApiApp>(c.api, { fetch: authorisedFetch(c, fetchImpl, signerFor) }),
    }));
    return api;
  };
  const call: Call = async (send) => {
    const { connection, api } = await client();
    return answerOf(connection, await send(api));
  };
  return { connection: connect, ...operations(call) };
}

/** hc's fetch: adds the credential, and names the API when it cannot be reached. */
function authorisedFetch(
  connection: Connection,
  fetchImpl: typeof fetch,
  signerFor: SignerFor,
): typeof fetch {
  return async (input, init = {}) => {
    const url = String(input);
    const method = init.method ?? 'GET';
    const payload = typeof init.body === 'string' ? init.body : undefined;
    let headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    if (connection.auth === 'token') headers.authorization = `Bearer ${connection.token}`;
    else
      headers = await signed(await signerFor(connection.region).catch(signFailed), {
        method,
        url,
        headers,
        payload,
      });
    try {
      return await fetchImpl(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
    } catch {
      throw new Error(
        isLoopback(connection.api)
          ? `cannot reach the API at ${connection.api} — is \`npm start\` running?`
          : `cannot reach the API at ${connection.api} (from ${connection.via})`,
      );
    }
  };
}

const signFailed = (error: unknown): never => {
  throw new Error(`cannot sign the request for IAM auth: ${(error as Error).message}`);
};

/** The request's headers with a SigV4 signature, less Host (fetch sets it, to the value signed). */
async function signed(
  sign: Signer,
  request: { method: string; url: string; headers: Record<string, string>; payload: string | undefined },
): Promise<Record<string, string>> {
  const { host: _host, ...rest } = await sign({
    method: request.method,
    url: request.url,
    headers: request.headers,
    ...(request.payload !== undefined ? { body: request.payload } : {}),
  }).catch(signFailed);
  return rest;
}

/** The typed body of a success answer, or an ApiError with the problem. */
async function answerOf<R extends ClientResponse<unknown, number, string>>(
  connection: Connection,
  res: R,
): Promise<Answer<R>> {
  if (res.status === 204) return undefined as Answer<R>;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    throw new Error(`the API at ${connection.api} answered ${res.status} with something that is not JSON`);
  }
  if (res.status === 403 && connection.auth === 'iam') throw iamRefused(connection, parsed);
  if (!res.ok) throw new ApiError(res.status, (parsed ?? {}) as Problem);
  return parsed as Answer<R>;
}

/** One method per operation (named after its operationId where the CLI has no better name). */
function operations(call: Call) {
  const vm = (id: string) => ({ param: { id: segment(id) } });
  const listVms = (
    filter: { node?: string; state?: VmView['state']; limit?: number; cursor?: string } = {},
  ) => call((api) => api.v1.vms.$get({ query: query(filter) }));

  return {
    /** A retry of the same create with the same key never makes a second VM. */
    createVm: (body: CreateVmRequest, idempotencyKey: string = randomUUID()) =>
      call((api) => api.v1.vms.$post({ json: body }, { headers: { 'idempotency-key': idempotencyKey } })),
    listVms,
    /** Every VM matching the filter, following the pages. */
    async allVms(filter: { node?: string; state?: VmView['state'] } = {}): Promise<VmView[]> {
      const out: VmView[] = [];
      let cursor: string | undefined;
      do {
        const page = await listVms({ ...filter, limit: 500, ...(cursor ? { cursor } : {}) });
        out.push(...page.items);
        cursor = page.next ?? undefined;
      } while (cursor);
      return out;
    },
    getVm: (id: string) => call((api) => api.v1.vms[':id'].$get(vm(id))),
    patchVm: (id: string, patch: VmPatch) =>
      call((api) => api.v1.vms[':id'].$patch({ ...vm(id), json: patch })),
    suspendVm: (id: string) => call((api) => api.v1.vms[':id'].suspend.$post({ ...vm(id), json: {} })),
    resumeVm: (id: string, nodeId?: string) =>
      call((api) => api.v1.vms[':id'].resume.$post({ ...vm(id), json: nodeId ? { node: nodeId } : {} })),
    restartVm: (id: string, nodeId?: string) =>
      call((api) => api.v1.vms[':id'].restart.$post({ ...vm(id), json: nodeId ? { node: nodeId } : {} })),
    migrateVm: (id: string, to: string) =>
      call((api) => api.v1.vms[':id'].migrate.$post({ ...vm(id), json: { to } })),
    /** The VM while its owner stops it, or undefined once it is gone. */
    deleteVm: (id: string) => call((api) => api.v1.vms[':id'].$delete(vm(id))),
    listModules: () => call((api) => api.v1.modules.$get()),
    registerImage: (body: ImageRegistration) => call((api) => api.v1.images.$post({ json: body })),
    listImages: () => call((api) => api.v1.images.$get()),
    getImage: (name: string) =>
      call((api) => api.v1.images[':name'].$get({ param: { name: segment(name) } })),
    deleteImage: (name: string) =>
      call((api) => api.v1.images[':name'].$delete({ param: { name: segment(name) } })),
    listNodes: () => call((api) => api.v1.nodes.$get()),
    getNode: (id: string) => call((api) => api.v1.nodes[':id'].$get(vm(id))),
    patchNode: (id: string, patch: NodePatch) =>
      call((api) => api.v1.nodes[':id'].$patch({ ...vm(id), json: patch })),
    getConfig: () => call((api) => api.v1.config.balancing.$get()),
    putConfig: (patch: InferRequestType<Api['v1']['config']['balancing']['$put']>['json']) =>
      call((api) => api.v1.config.balancing.$put({ json: patch })),
    balance: (dryRun: boolean) => call((api) => api.v1.balance.$post({ json: { dryRun } })),
    listPlans: (limit?: number) => call((api) => api.v1.plans.$get({ query: query({ limit }) })),
    applyPlan: (id: string) => call((api) => api.v1.plans[':id'].apply.$post(vm(id))),
    listRuns: (limit?: number) => call((api) => api.v1.runs.$get({ query: query({ limit }) })),
    listMigrations: (filter: { limit?: number; vm?: string } = {}) =>
      call((api) => api.v1.migrations.$get({ query: query(filter) })),
    cluster: () => call((api) => api.v1.cluster.$get()),
  };
}

/** A query as hc sends it: numbers become strings, absent values are left out. */
type Query<T> = {
  [K in keyof T]?: Exclude<T[K], number | undefined> | (number extends T[K] ? string : never);
};

/** Query parameters as strings, leaving out the ones not given. */
function query<T extends Record<string, string | number | undefined>>(params: T): Query<T> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) if (value !== undefined) out[key] = String(value);
  return out as Query<T>;
}
