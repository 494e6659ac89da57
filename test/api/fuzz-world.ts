// The world every fuzz file runs in: the real app over a fresh table and bucket, seeded with nodes,
// VMs in each state, a module, an image and a plan; and hostile requests for each operation of its
// /openapi.json (path parameters, query, body and content type), biased towards the seeded ids.
import fc from 'fast-check';
import { expect } from 'vitest';
import { guestBinary } from '../../node-agent/guests/index.ts';
import {
  fileBytes,
  type Known,
  type OpenApiDoc,
  type Operation,
  operationsOf,
  validOf,
} from './fuzz-schema.ts';
import {
  CONTENT_TYPES,
  hostileSegment,
  malformedJson,
  mutationOf,
  queryOf,
  toJsonText,
} from './fuzz-support.ts';
import { aWitness, type Hostile } from './fuzz-witness.ts';
import { aNode, anApi, aVm, TOKEN } from './support.ts';

/**
 * Runs per property, `n` times SEESAW_FUZZ_RUNS (default 1), from a fixed seed (SEESAW_FUZZ_SEED to
 * hunt elsewhere): the same requests every run.
 */
export const runs = (n: number) => ({
  seed: Number(process.env.SEESAW_FUZZ_SEED ?? 20_261_202),
  numRuns: Math.max(1, Math.round(n * Number(process.env.SEESAW_FUZZ_RUNS ?? 1))),
});

/** A raw disk: whole sectors, the boot signature at byte 510. */
function rawDisk(): Uint8Array {
  const bytes = new Uint8Array(1024);
  bytes.set([0x55, 0xaa], 510);
  return bytes;
}

/** A qcow2 v3 header: 64 KiB clusters, 1 GiB virtual. */
function qcow2(): Uint8Array {
  const bytes = new Uint8Array(4096);
  const view = new DataView(bytes.buffer);
  bytes.set([0x51, 0x46, 0x49, 0xfb]);
  view.setUint32(4, 3);
  view.setUint32(20, 16);
  view.setBigUint64(24, 1n << 30n);
  view.setUint32(100, 104);
  return bytes;
}

/** The start of a Linux bzImage: the boot signature and the HdrS setup header. */
function bzImage(): Uint8Array {
  const bytes = new Uint8Array(1024);
  bytes.set([0x55, 0xaa], 0x1fe);
  bytes.set([0x48, 0x64, 0x72, 0x53], 0x202);
  return bytes;
}

/** The seeded ids, by the field or parameter that takes them, and the files base64 fields carry. */
function knownOf(wasm: Uint8Array): Known {
  return {
    ids: {
      id: ['vm-run', 'vm-susp', 'vm-pend', 'vm-del', 'n1', 'n2', 'n3', 'plan-0001'],
      name: ['my-idle', 'disk', 'counter', 'nope'],
      node: ['n1', 'n2', 'n3'],
      to: ['n1', 'n2', 'n3', 'auto'],
      vm: ['vm-run', 'vm-susp'],
      guest: ['cpu', 'idle', 'trace', 'module:my-idle', 'module:nope', 'qemu:counter', 'qemu:disk'],
    },
    files: [wasm, rawDisk(), qcow2(), bzImage()],
  };
}

/** The app, its document and operations, and `seed()` to call before the first request. */
export async function aFuzzWorld() {
  /** What the app logged as the cause of each 5xx: printed beside a failure. */
  const logged: unknown[] = [];
  const api = await anApi({ logError: (error) => logged.push(error) });
  const doc = (await (await api.call('GET', '/openapi.json', { auth: false })).json()) as OpenApiDoc;
  const wasm = await guestBinary('idle');
  const known = knownOf(wasm);
  const witness = aWitness(api, logged);

  async function seed() {
    await aNode(api.clients, 'n1', { vms: { 'vm-run': 0.5 } });
    await aNode(api.clients, 'n2');
    await aNode(api.clients, 'n3', { live: false });
    await aVm(api.clients, 'vm-run', 'n1');
    await aVm(api.clients, 'vm-susp', 'n1', 'SUSPENDED');
    await aVm(api.clients, 'vm-pend', 'n2', 'PENDING');
    await aVm(api.clients, 'vm-del', 'n2', 'DELETING');
    const seeded = [
      await api.call('POST', '/v1/modules?name=my-idle', {
        raw: new Uint8Array(wasm),
        headers: { 'content-type': 'application/wasm' },
      }),
      await api.call('POST', '/v1/images', {
        body: { name: 'disk', format: 'raw', disk: Buffer.from(rawDisk()).toString('base64') },
      }),
      await api.call('POST', '/v1/balance', { body: { dryRun: true } }),
    ];
    expect(seeded.map((r) => r.status)).toEqual([201, 201, 200]);
    await witness.start();
  }

  /** The operation's path with each parameter a known id or a hostile segment. */
  function pathOf(op: Operation): fc.Arbitrary<string> {
    const ids = fc.constantFrom(...(known.ids.id ?? []), ...(known.ids.name ?? []));
    const segment = fc.oneof({ weight: 2, arbitrary: ids }, { weight: 3, arbitrary: hostileSegment });
    return fc
      .tuple(...op.pathParams.map(() => segment))
      .map((values) =>
        op.pathParams.reduce((path, name, i) => path.replace(`{${name}}`, values[i] ?? ''), op.path),
      );
  }

  /** A JSON body text: valid for the schema, one thing wrong, any JSON at all, or not JSON. */
  function jsonTextOf(op: Operation): fc.Arbitrary<string> {
    const schema = op.body?.types['application/json'];
    const valid = schema ? validOf(schema, doc, known) : fc.constant({});
    return fc.oneof(
      valid.map(toJsonText),
      { weight: 3, arbitrary: mutationOf(valid).map(toJsonText) },
      fc.jsonValue().map(toJsonText),
      fc.anything().map(toJsonText),
      malformedJson,
    );
  }

  /** The body and its content type: mostly JSON as declared, sometimes the wrong type, or file bytes. */
  function bodyOf(op: Operation): fc.Arbitrary<{ type?: string; body?: string | Uint8Array }> {
    if (op.method === 'GET' || op.method === 'HEAD') return fc.constant({});
    const json = jsonTextOf(op);
    const declared = Object.keys(op.body?.types ?? { 'application/json': {} });
    const options = [
      { weight: 6, arbitrary: fc.record({ type: fc.constantFrom(...declared), body: json }) },
      { weight: 1, arbitrary: fc.record({ type: fc.constantFrom(...CONTENT_TYPES), body: json }) },
      { weight: 1, arbitrary: fc.record({ body: json }) },
      { weight: 1, arbitrary: fc.constant({}) },
    ];
    // Binary uploads (application/wasm): whole, cut short, one byte changed, random.
    const binary = declared.filter((type) => !type.includes('json'));
    if (binary.length)
      options.push({
        weight: 4,
        arbitrary: fc.record({ type: fc.constantFrom(...binary), body: fileBytes(known.files) }),
      });
    return fc.oneof(...options);
  }

  /** A hostile request to `op`, with the right bearer token. */
  function requestOf(op: Operation): fc.Arbitrary<Hostile> {
    return fc
      .tuple(pathOf(op), queryOf(op.query, doc, known), bodyOf(op), fc.boolean())
      .map(([path, query, { type, body }, withQuery]) => ({
        method: op.method,
        path: `${path}${withQuery || Object.keys(op.query).length ? query : ''}`,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(type !== undefined ? { 'content-type': type } : {}),
        },
        ...(body !== undefined ? { body } : {}),
      }));
  }

  return { api, doc, operations: operationsOf(doc), known, witness, logged, seed, requestOf };
}
