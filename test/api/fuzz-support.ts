// Hostile requests for the whole HTTP surface, read off the app's own OpenAPI document: each
// operation's path, query and body become fast-check arbitraries of near-valid and broken requests,
// and `exchange` sends one and checks the laws every answer must keep (test/api/fuzz.test.ts).
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { expect } from 'vitest';
import { ProblemSchema } from '../../functions/api/problem.ts';
import { PROBLEM, type TestApi } from './support.ts';

/** One operation of the OpenAPI document, as the fuzz needs it. */
export interface Operation {
  /** `POST /v1/vms/{id}/migrate` */
  at: string;
  method: string;
  path: string;
  secured: boolean;
  pathParams: string[];
  query: Record<string, JsonSchema>;
  /** Content type → schema of the request body, when it takes one. */
  body?: { required: boolean; types: Record<string, JsonSchema> };
}

/** The subset of JSON Schema (OpenAPI 3.0 flavour) that zod-openapi emits. */
export interface JsonSchema {
  $ref?: string;
  type?: string;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  description?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  nullable?: boolean;
  default?: unknown;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
}

interface Parameter {
  name: string;
  in: string;
  schema: JsonSchema;
}
interface DocOperation {
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
}
export interface OpenApiDoc {
  paths: Record<string, Record<string, DocOperation>>;
  components: { schemas: Record<string, JsonSchema> };
}

/** Every operation of the document: what the fuzz runs, so a new route is fuzzed with no edit here. */
export function operationsOf(doc: OpenApiDoc): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => {
      const parameters = op.parameters ?? [];
      const content = op.requestBody?.content;
      return {
        at: `${method.toUpperCase()} ${path}`,
        method: method.toUpperCase(),
        path,
        secured: op.security !== undefined,
        pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        query: Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
        ...(content
          ? {
              body: {
                required: op.requestBody?.required ?? false,
                types: Object.fromEntries(Object.entries(content).map(([type, c]) => [type, c.schema])),
              },
            }
          : {}),
      };
    }),
  );
}

/** What the store was seeded with: ids by the name of the field or parameter that takes them, and
 *  files (a guest module, disks, a kernel) that base64 fields carry whole, cut short or with a byte changed. */
export interface Known {
  ids: Record<string, readonly string[]>;
  files: readonly Uint8Array[];
}

/** Values `schema` accepts (mostly: cross-field rules are not in the schema), biased to known ids. */
export function validOf(schema: JsonSchema, doc: OpenApiDoc, known: Known, name = ''): fc.Arbitrary<unknown> {
  if (schema.$ref) return validOf(resolve(schema.$ref, doc), doc, known, name);
  const arb = plainValidOf(schema, doc, known, name);
  return schema.nullable ? fc.option(arb, { nil: null }) : arb;
}

function resolve(ref: string, doc: OpenApiDoc): JsonSchema {
  const schema = doc.components.schemas[ref.replace('#/components/schemas/', '')];
  if (!schema) throw new Error(`no schema ${ref}`);
  return schema;
}

function plainValidOf(
  schema: JsonSchema,
  doc: OpenApiDoc,
  known: Known,
  name: string,
): fc.Arbitrary<unknown> {
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) return fc.oneof(...alternatives.map((s) => validOf(s, doc, known, name)));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  switch (schema.type) {
    case 'string':
      return schema.description?.includes('base64')
        ? fileBytes(known.files).map((bytes) => Buffer.from(bytes).toString('base64'))
        : validString(schema, known.ids[name]);
    case 'integer':
      return fc.integer({ min: bound(schema.minimum, -1e6), max: bound(schema.maximum, 1e6) });
    case 'number':
      return validNumber(schema);
    case 'boolean':
      return fc.boolean();
    case 'array':
      return validArray(schema, validOf(schema.items ?? {}, doc, known, name));
    case 'object':
      return validObject(schema, doc, known);
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A few items, or now and then as many as the schema allows: what must still fit where it is stored. */
function validArray(schema: JsonSchema, item: fc.Arbitrary<unknown>): fc.Arbitrary<unknown[]> {
  const few = fc.array(item, {
    minLength: schema.minItems ?? 0,
    maxLength: Math.min(schema.maxItems ?? 4, 4),
  });
  if (schema.maxItems === undefined || schema.maxItems <= 4) return few;
  const most = Math.min(schema.maxItems, 100_000);
  return fc.oneof(
    { weight: 9, arbitrary: few },
    { weight: 1, arbitrary: item.map((one) => Array.from({ length: most }, () => one)) },
  );
}

const bound = (value: number | undefined, fallback: number) =>
  Math.max(Math.min(value ?? fallback, 1e6), -1e6);

function validString(schema: JsonSchema, known: readonly string[] | undefined): fc.Arbitrary<string> {
  const longest =
    schema.maxLength === undefined
      ? []
      : [fc.string({ minLength: schema.maxLength, maxLength: schema.maxLength })];
  const generic = schema.pattern
    ? fc.stringMatching(new RegExp(schema.pattern))
    : fc.oneof(
        {
          weight: 9,
          arbitrary: fc.string({
            minLength: schema.minLength ?? 0,
            maxLength: Math.min(schema.maxLength ?? 24, 24),
          }),
        },
        ...longest.map((arbitrary) => ({ weight: 1, arbitrary })),
      );
  return known?.length ? fc.oneof(fc.constantFrom(...known), generic) : generic;
}

/** Whole files, files cut short, files with one byte changed, and random bytes. */
export function fileBytes(files: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const whole = fc.constantFrom(...files);
  return fc.oneof(
    whole,
    fc.tuple(whole, fc.nat()).map(([file, at]) => file.slice(0, at % (file.byteLength + 1))),
    fc.tuple(whole, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([file, at, byte]) => {
      const copy = file.slice();
      if (copy.byteLength) copy[at % copy.byteLength] = byte;
      return copy;
    }),
    fc.uint8Array({ maxLength: 2048 }),
  );
}

function validNumber(schema: JsonSchema): fc.Arbitrary<number> {
  const min = bound(schema.minimum, -1e6);
  const max = bound(schema.maximum, 1e6);
  return fc.double({
    min,
    max,
    noNaN: true,
    noDefaultInfinity: true,
    minExcluded: schema.exclusiveMinimum === true,
    maxExcluded: schema.exclusiveMaximum === true,
  });
}

function validObject(schema: JsonSchema, doc: OpenApiDoc, known: Known): fc.Arbitrary<unknown> {
  const properties = schema.properties ?? {};
  const record = fc.record(
    Object.fromEntries(Object.entries(properties).map(([key, s]) => [key, validOf(s, doc, known, key)])),
    { requiredKeys: schema.required ?? [] },
  );
  const extra = schema.additionalProperties;
  if (typeof extra !== 'object') return record;
  const dictionary = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), validOf(extra, doc, known), {
    maxKeys: 3,
  });
  return fc.tuple(record, dictionary).map(([r, d]) => ({ ...d, ...r }));
}

/** A JSON token written as it is into the body: what JSON.stringify cannot produce (1e400, -0, NaN). */
export class Raw {
  constructor(readonly text: string) {}
}

/** JSON text of `value`, with every `Raw` inside written verbatim. */
export function toJsonText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (!(v instanceof Raw)) return v;
    raws.push(v.text);
    return `\u{10FFFF}raw${raws.length - 1}\u{10FFFF}`;
  });
  return (text ?? '').replace(/"\u{10FFFF}raw(\d+)\u{10FFFF}"/gu, (_m, i: string) => raws[Number(i)] ?? '');
}

/** An object with an own property `key`, even `__proto__` (which plain assignment would not make). */
export function withKey(target: Record<string, unknown>, key: string, value: unknown) {
  const copy = { ...target };
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

const KEYS_OF_THE_PROTOTYPE = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
];

/** Strings that break naive code: empty, huge, unicode, lone surrogates, NUL, paths, numbers as text. */
export const hostileString = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '..',
    '../../etc/passwd',
    'module:../x',
    'qemu:../../x',
    'NaN',
    'Infinity',
    '1e400',
    '%00',
    '\u202e\u0301',
    '\ud800',
    '😀'.repeat(100),
    ...KEYS_OF_THE_PROTOTYPE,
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer({ min: 100, max: 70_000 }).map((n) => 'x'.repeat(n)),
);

/** Numbers at the edges, including tokens only raw JSON can carry. */
export const hostileNumber = fc.oneof(
  fc.constantFrom<unknown>(
    0,
    -1,
    0.5,
    1.5,
    -1e-9,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_VALUE,
    2 ** 31,
    2 ** 32 + 1,
    new Raw('1e400'),
    new Raw('-1e400'),
    new Raw('-0'),
    new Raw(`1${'0'.repeat(400)}`),
    new Raw(`0.${'0'.repeat(400)}1`),
    new Raw('18446744073709551617'),
  ),
  fc.double(),
);

/** Nesting `depth` deep, as arrays or objects. */
const deep = fc
  .tuple(fc.integer({ min: 10, max: 5000 }), fc.boolean())
  .map(
    ([depth, arrays]) => new Raw(arrays ? `${'['.repeat(depth)}${']'.repeat(depth)}` : nestedObjects(depth)),
  );

const nestedObjects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** Any value a hostile field may take. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileNumber,
  fc.constantFrom<unknown>(null, true, false, [], {}, [1, 2], { a: 1 }),
  fc.jsonValue({ maxDepth: 3 }),
  deep,
);

/** `valid` with one thing wrong: a field of the wrong kind, a field too many or missing, the wrong root. */
export function mutationOf(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(valid, fc.nat(), hostileValue, fc.constantFrom(...KEYS_OF_THE_PROTOTYPE, 'extra', 'guest'))
    .chain(([body, pick, value, extraKey]) => {
      if (body === null || typeof body !== 'object' || Array.isArray(body))
        return fc.constantFrom(value, [body], { body });
      const object = body as Record<string, unknown>;
      const keys = Object.keys(object);
      const key = keys.length ? (keys[pick % keys.length] as string) : extraKey;
      const { [key]: _dropped, ...without } = object;
      return fc.constantFrom(
        withKey(object, key, value),
        withKey(object, extraKey, value),
        without,
        [object],
        withKey(object, key, [object[key]]),
        withKey(object, key, { value: object[key] }),
      );
    });
}

/** Text that is not JSON, or JSON cut short. */
export const malformedJson = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '{"a":',
    '[',
    'nul',
    '{"a":1,}',
    "{'a':1}",
    '{"a":NaN}',
    '{"a":1}{',
    '\ufeff{}',
    '"\\ud800"',
  ),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.jsonValue().map((v) => {
    const text = JSON.stringify(v) ?? '';
    return text.slice(0, Math.max(0, text.length - 1));
  }),
);

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json; charset=utf-16',
  'application/merge-patch+json',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data',
  'multipart/form-data; boundary=x',
  'application/wasm',
  'application/octet-stream',
  '',
  'application/json, text/plain',
] as const;

/** Percent-encoded UTF-8 (a lone surrogate as U+FFFD, which encodeURIComponent would refuse). */
const percentEncoded = (text: string) => encodeURIComponent(Buffer.from(text).toString());

/** Path segments that break naive routing: empty, dot segments, encoded slashes, huge, unicode. */
export const hostileSegment = fc.oneof(
  fc.constantFrom(
    '',
    '.',
    '..',
    '%2e%2e',
    '%2F',
    'a%2Fb',
    '%',
    '%zz',
    '%00',
    '%C0%AF',
    '%ff',
    '..%2f..%2f',
    '😀',
    '%F0%9F%98%80',
    ' ',
    '%20',
    ';',
    '*',
    ...KEYS_OF_THE_PROTOTYPE,
  ),
  fc.integer({ min: 129, max: 20_000 }).map((n) => 'a'.repeat(n)),
  fc.string({ unit: 'binary', maxLength: 20 }).map(percentEncoded),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

/** A query string for `query`'s parameters: valid, hostile, repeated and unknown keys, raw or encoded. */
export function queryOf(
  query: Record<string, JsonSchema>,
  doc: OpenApiDoc,
  known: Known,
): fc.Arbitrary<string> {
  const names = Object.keys(query);
  const name = fc.oneof(
    ...(names.length ? [fc.constantFrom(...names)] : []),
    fc.constantFrom('unknown', '__proto__', 'constructor', ''),
  );
  const validValue = (key: string) => {
    // Own keys only: `constructor` is a hostile name here, not Object's.
    const schema = Object.hasOwn(query, key) ? query[key] : undefined;
    return schema ? validOf(schema, doc, known, key).map(String) : fc.constant('x');
  };
  const value = (key: string) =>
    fc.oneof(
      validValue(key),
      hostileString,
      hostileNumber.map((n) => (n instanceof Raw ? n.text : String(n))),
    );
  const pair = name.chain((key) =>
    fc
      .tuple(fc.constant(key), value(key), fc.boolean())
      .map(([k, v, encode]) =>
        encode ? `${percentEncoded(k)}=${percentEncoded(v)}` : `${k}=${v.replaceAll('#', '%23')}`,
      ),
  );
  return fc.array(pair, { maxLength: 4 }).map((pairs) => (pairs.length ? `?${pairs.join('&')}` : ''));
}

/** One request to send. */
export interface Hostile {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** Every table item and every bucket object: what a refused request must leave as it was. */
export async function storesOf(api: TestApi): Promise<Stores> {
  const objects = await api.clients.s3.send(new ListObjectsV2Command({ Bucket: api.clients.bucketName }));
  return {
    items: (await api.snapshot()) as Stores['items'],
    objects: (objects.Contents ?? []).map((o) => `${o.Key} ${o.ETag} ${o.Size}`).sort(),
  };
}

/** How long any one request may take, on a loaded two-core machine, before it counts as a hang. */
export const HANG_MS = 10_000;

/** The answer of `app.request`, or a failure naming the request that did not finish in time. */
async function sendWithin(api: TestApi, request: Hostile): Promise<Response> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${request.method} ${request.path.slice(0, 200)} hung past ${HANG_MS} ms`)),
      HANG_MS,
    );
  });
  const init: RequestInit = { method: request.method, headers: request.headers };
  if (request.body !== undefined) init.body = request.body as BodyInit;
  try {
    return await Promise.race([Promise.resolve(api.app.request(request.path, init)), hang]);
  } finally {
    clearTimeout(timer);
  }
}

interface Stores {
  items: { pk?: unknown }[];
  objects: string[];
}

/** The stores without the Idempotency-Key record of `key`: the one item a refused request may write. */
const withoutRecordOf = (stores: Stores, key: string | undefined): Stores =>
  key === undefined
    ? stores
    : { ...stores, items: stores.items.filter((item) => item.pk !== `IDEMPOTENCY#${key}`) };

/** What one exchange came to: the status, the problem of a 4xx, whether it was an Idempotency-Key replay. */
export interface Exchanged {
  status: number;
  problem?: Record<string, unknown>;
  replayed: boolean;
}

/** Tracks the stores between requests, so each request costs one read of them, not two. */
export function aWitness(api: TestApi, logged: unknown[] = []) {
  let last: Stores | undefined;
  return {
    async start() {
      last = await storesOf(api);
    },
    /**
     * Sends `request` and checks the laws: no 5xx or hang; a 4xx is a problem whose status is the
     * HTTP status; a 4xx, a GET or a replay changes nothing (but the Idempotency-Key record of
     * `idempotencyKey`, which a first answer may store).
     */
    async exchange(request: Hostile, options: { idempotencyKey?: string } = {}): Promise<Exchanged> {
      const res = await sendWithin(api, request);
      const text = await res.text();
      const now = await storesOf(api);
      const before = last;
      last = now;
      const replayed = res.headers.get('idempotent-replayed') === 'true';
      const what = `${request.method} ${request.path.slice(0, 300)} → ${res.status} ${text.slice(0, 300)}`;
      expect(res.status, `${what}\nlogged: ${logged.map(String).join('\n')}`).toBeLessThan(500);
      const safe = request.method === 'GET' || request.method === 'HEAD';
      if (res.status < 400 && !safe && !replayed) return { status: res.status, replayed };
      const key = replayed ? undefined : options.idempotencyKey;
      expect(withoutRecordOf(now, key), `${what}: the stores changed`).toEqual(
        before && withoutRecordOf(before, key),
      );
      if (res.status < 400) return { status: res.status, replayed };
      expect(res.headers.get('content-type'), what).toBe(PROBLEM);
      if (request.method === 'HEAD') return { status: res.status, replayed };
      const problem = JSON.parse(text) as Record<string, unknown>;
      expect(ProblemSchema.safeParse(problem).success, what).toBe(true);
      expect(problem.status, what).toBe(res.status);
      expect(problem.type, what).toMatch(/^urn:seesaw:problem:[a-z-]+$/);
      return { status: res.status, problem, replayed };
    },
  };
}
