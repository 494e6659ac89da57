// The OpenAPI document is the API's contract: it must be a valid OpenAPI 3.0 document (checked by
// an independent validator), and every operation must carry a unique operationId that names it.
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeAll, describe, expect, it } from 'vitest';
import { anApi } from './support.ts';

type Operation = { operationId?: string; tags?: string[]; security?: unknown[] };
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

describe('/openapi.json', () => {
  let doc: Doc;
  beforeAll(async () => {
    const api = await anApi();
    doc = (await (await api.call('GET', '/openapi.json', { auth: false })).json()) as Doc;
  });

  it('is a valid OpenAPI 3.0 document', async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.0.3');
  });

  it('tags every operation with its group, and puts every /v1 operation behind the bearer token', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ at: `${method.toUpperCase()} ${path}`, path, op })),
    );
    expect(operations.filter(({ op }) => op.tags?.length !== 1).map((o) => o.at)).toEqual([]);
    const open = operations.filter(({ op }) => op.security === undefined).map((o) => o.at);
    expect(open).toEqual(operations.filter(({ path }) => !path.startsWith('/v1/')).map((o) => o.at));
    expect(open).toContain('GET /healthz');
    expect(doc.paths['/v1/vms']?.get?.tags).toEqual(['VMs']);
    expect(doc.paths['/v1/nodes']?.get?.security).toEqual([{ bearerAuth: [] }]);
  });

  it('gives every operation a unique operationId', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        at: `${method.toUpperCase()} ${path}`,
        id: op.operationId,
      })),
    );
    expect(operations.length).toBe(24);
    expect(operations.filter((op) => !op.id).map((op) => op.at)).toEqual([]);
    expect(new Set(operations.map((op) => op.id)).size).toBe(operations.length);
    expect(Object.fromEntries(operations.map((op) => [op.at, op.id]))).toMatchObject({
      'POST /v1/vms': 'createVm',
      'GET /v1/vms/{id}': 'getVm',
      'POST /v1/plans/{id}/apply': 'applyPlan',
      'GET /v1/cluster': 'getCluster',
    });
  });

  it('is rejected by the validator when broken, so the check above can fail', async () => {
    const broken = structuredClone(doc) as Record<string, unknown>;
    delete broken.info;
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });
});
