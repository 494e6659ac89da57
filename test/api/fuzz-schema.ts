// The OpenAPI document as the fuzz reads it: its operations, and fast-check arbitraries of values
// each JSON Schema accepts (biased to the seeded ids, base64 fields carrying the seeded files).
import fc from 'fast-check';

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
