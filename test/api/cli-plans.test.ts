// `seesaw balance --dry-run`, `--apply ID` and `--plans` against a running API.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { findVm } from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';
import { aNode, aVm } from './support.ts';

const TOKEN = 'cli-plans-token';

describe('seesaw balance with plans', () => {
  let clients: Clients;
  let server: ApiServer;
  const seesaw = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['bin/seesaw.js', ...args],
        { env: { ...process.env, SEESAW_TOKEN: TOKEN, SEESAW_API: server.url }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  beforeAll(async () => {
    clients = await freshStores();
    await aNode(clients, 'n1', { vms: { 'vm-1': 3, 'vm-2': 1 } });
    await aNode(clients, 'n2', { vms: { 'vm-3': 1 } });
    for (const [vm, node] of [
      ['vm-1', 'n1'],
      ['vm-2', 'n1'],
      ['vm-3', 'n2'],
    ] as const)
      await aVm(clients, vm, node);
    server = await startApiServer({ clients, token: TOKEN, port: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('prints the plan of a dry run, applies exactly it, lists it, and refuses a second apply', async () => {
    const dry = await seesaw(['balance', '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const id = /plan (plan-[0-9a-f]+): 1 move\(s\), valid until /.exec(dry.stdout)?.[1];
    expect(id).toBeDefined();
    expect(dry.stdout).toContain(`seesaw balance --apply ${id}`);
    expect((await findVm(clients, 'vm-2'))?.migration).toBeUndefined();

    const listed = await seesaw(['balance', '--plans', '--json']);
    expect(JSON.parse(listed.stdout).map((p: { id: string }) => p.id)).toEqual([id]);

    const applied = await seesaw(['balance', '--apply', id as string]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain(`plan ${id} applied: 1 of 1 order(s) written`);
    expect((await findVm(clients, 'vm-2'))?.migration).toMatchObject({ origin: id, to: 'n2' });

    const again = await seesaw(['balance', '--apply', id as string]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^seesaw: 409 Conflict: plan .* was already applied/);
  });

  it('creates a VM with --cpu-limit and shows the limit apart from the target load', async () => {
    const created = await seesaw([
      'vm',
      'create',
      '--guest',
      'cpu',
      '--cpu-limit',
      '0.5',
      '--target-load',
      '2',
      '--node',
      'n2',
      '--json',
    ]);
    expect(created.stderr).toBe('');
    const vm = JSON.parse(created.stdout);
    expect(vm).toMatchObject({ cpuLimit: 0.5, targetLoad: 2 });
    const shown = await seesaw(['vm', 'show', vm.id]);
    expect(shown.stdout).toMatch(/cpu limit\s+0\.5 cores/);
    expect(shown.stdout).toMatch(/target load\s+2 .*not a limit/);
    const bad = await seesaw(['vm', 'create', '--guest', 'cpu', '--cpu-limit', 'half']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--cpu-limit must be a number');
  });

  it('refuses two modes at once', async () => {
    const out = await seesaw(['balance', '--dry-run', '--plans']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('choose one of --dry-run, --apply and --plans');
  });
});
