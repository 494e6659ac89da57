// The CLI's client is typed from the API app itself (Hono's hc over ApiApp): its wire types are
// the routes' zod schemas, not storage records. `tsc` (npm run typecheck) checks these lines; the
// runtime half checks the client sends what the types describe.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { type CreateVmRequest, createClient, type NodeView, type VmView } from '../../bin/client.ts';
import type { NodeSchema, VmSchema } from '../../functions/api/schemas.ts';

describe('the typed client', () => {
  it('uses the API schemas as its types', () => {
    expectTypeOf<VmView>().toEqualTypeOf<z.output<typeof VmSchema>>();
    expectTypeOf<NodeView>().toEqualTypeOf<z.output<typeof NodeSchema>>();
    expectTypeOf<CreateVmRequest['guest']>().toEqualTypeOf<string>();
    expectTypeOf<VmView['state']>().toEqualTypeOf<
      'PENDING' | 'RUNNING' | 'SUSPENDING' | 'SUSPENDED' | 'DELETING' | 'FAILED'
    >();
  });

  it('sends each operation to its path with the bearer token, and encodes ids', async () => {
    const sent: { method: string; url: string; auth: string | null; body: unknown }[] = [];
    const fetchStub: typeof fetch = async (input, init) => {
      const headers = new Headers(init?.headers);
      sent.push({
        method: init?.method ?? 'GET',
        url: String(input),
        auth: headers.get('authorization'),
        body: init?.body ? JSON.parse(String(init.body)) : undefined,
      });
      return new Response(JSON.stringify({ items: [], next: null }), {
        headers: { 'content-type': 'application/json' },
      });
    };
    const client = createClient(
      { api: 'http://127.0.0.1:1', via: 'test', auth: 'token', token: 't0k' },
      fetchStub,
    );
    await client.listVms({ state: 'RUNNING', limit: 5 });
    await client.migrateVm('vm/1', 'auto');
    await client.resumeVm('vm-2');
    expect(sent).toEqual([
      {
        method: 'GET',
        url: 'http://127.0.0.1:1/v1/vms?state=RUNNING&limit=5',
        auth: 'Bearer t0k',
        body: undefined,
      },
      {
        method: 'POST',
        url: 'http://127.0.0.1:1/v1/vms/vm%2F1/migrate',
        auth: 'Bearer t0k',
        body: { to: 'auto' },
      },
      { method: 'POST', url: 'http://127.0.0.1:1/v1/vms/vm-2/resume', auth: 'Bearer t0k', body: {} },
    ]);
    await expect(client.getVm('')).rejects.toThrow('an id must not be empty');
  });
});
