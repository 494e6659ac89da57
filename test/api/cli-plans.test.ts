// `seesaw balance --dry-run`, `--apply ID` and `--plans` against a running API.
import { describe, expect, it } from 'vitest';
import { findVm } from '../../shared/storage/vms.ts';
import { seesaw as run } from '../cli/support.ts';
import { aNode, aServedApi, aVm } from './support.ts';

const TOKEN = 'cli-plans-token';

describe('seesaw balance with plans', () => {
  const server = aServedApi(TOKEN, async (clients) => {
    await aNode(clients, 'n1', { vms: { 'vm-1': 3, 'vm-2': 1 } });
    await aNode(clients, 'n2', { vms: { 'vm-3': 1 } });
    for (const [vm, node] of [
      ['vm-1', 'n1'],
      ['vm-2', 'n1'],
      ['vm-3', 'n2'],
    ] as const)
      await aVm(clients, vm, node);
  });
  const seesaw = (args: string[]) => run(args, { env: { SEESAW_TOKEN: TOKEN, SEESAW_API: server.url } });

  it('prints the plan of a dry run, applies exactly it, lists it, and refuses a second apply', async () => {
    const dry = await seesaw(['balance', '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const id = /plan (plan-[0-9a-f]+): 1 move, valid until /.exec(dry.stdout)?.[1];
    expect(id).toBeDefined();
    expect(dry.stdout).toContain(`apply exactly these: seesaw balance --apply ${id}`);
    expect((await findVm(server.clients, 'vm-2'))?.migration).toBeUndefined();

    const listed = await seesaw(['balance', '--plans', '--json']);
    expect(JSON.parse(listed.stdout).map((p: { id: string }) => p.id)).toEqual([id]);

    const applied = await seesaw(['balance', '--apply', id as string]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain(`plan ${id} applied: 1 of 1 order(s) written`);
    expect((await findVm(server.clients, 'vm-2'))?.migration).toMatchObject({ origin: id, to: 'n2' });

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
