import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findVm } from '../../shared/storage/vms.ts';
import { seesaw as run } from '../cli/support.ts';
import { aNode, aServedApi, aVm } from './support.ts';

const TOKEN = 'cli-test-token';
const seesaw = (args: string[], env: Record<string, string> = {}) => run(args, { env });

describe('the seesaw CLI against a running API', () => {
  const server = aServedApi(TOKEN, async (clients) => {
    // A live node for the API's own clock (the server runs on Date.now).
    await aNode(clients, 'n1', { vms: { 'vm-1': 1 } });
    await aVm(clients, 'vm-1', 'n1');
  });

  it('lists VMs as JSON with --api and --token', async () => {
    const out = await seesaw(['vm', 'ls', '--json', '--api', server.url, '--token', TOKEN]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const vms = JSON.parse(out.stdout);
    expect(vms.map((vm: { id: string }) => vm.id)).toEqual(['vm-1']);
    expect(vms[0]).toMatchObject({ owner: 'n1', state: 'RUNNING' });
  });

  it('reads the token from DIR/token and prints a table by default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    const out = await seesaw(['vm', 'show', 'vm-1', '--api', server.url, '--data', dir]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^FIELD\s+VALUE/);
    expect(out.stdout).toMatch(/owner\s+n1/);
  });

  it('suspends without waiting and shows the request took effect', async () => {
    const out = await seesaw(['vm', 'suspend', 'vm-1', '--no-wait', '--api', server.url], {
      SEESAW_TOKEN: TOKEN,
    });
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe('vm-1 is suspending');
    expect((await findVm(server.clients, 'vm-1'))?.state).toBe('SUSPENDING');
  });

  it('exits non-zero with one line naming the API when it cannot reach it', async () => {
    const out = await seesaw(['vm', 'ls', '--api', 'http://127.0.0.1:9', '--token', TOKEN]);
    expect(out.code).not.toBe(0);
    expect(out.stdout).toBe('');
    expect(out.stderr.trim().split('\n')).toEqual([
      'seesaw: cannot reach the API at http://127.0.0.1:9 — is `npm start` running?',
    ]);
  });

  it("exits non-zero with the API's problem on one line", async () => {
    const out = await seesaw(['vm', 'show', 'nope', '--api', server.url, '--token', TOKEN]);
    expect(out.code).toBe(1);
    expect(out.stderr.trim().split('\n')).toEqual(['seesaw: 404 Not found: vm nope not found']);
    const denied = await seesaw(['cluster', '--api', server.url, '--token', 'wrong']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^seesaw: 401 Unauthorized: /);
  });

  it('says where to find a token when none is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-cli-'));
    const out = await seesaw(['nodes', 'ls', '--api', server.url, '--data', dir]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/^seesaw: no API token: pass --token, set SEESAW_TOKEN/);
  });
});
