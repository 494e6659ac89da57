// Hostile values for the fuzz: strings, numbers, nesting and keys that break naive code, a valid
// body with one thing wrong, text that is not JSON, content types, path segments and query strings.
import fc from 'fast-check';
import { type JsonSchema, type Known, type OpenApiDoc, validOf } from './fuzz-schema.ts';

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
