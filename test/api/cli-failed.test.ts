import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import { afterFailure } from '../../shared/domain/restart.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { failVm, findVm } from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';
import { aNode, aVm } from './support.ts';

const TOKEN = 'cli-failed-token';

function seesaw(args: string[], url: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['bin/seesaw.js', ...args, '--api', url],
      { env: { ...process.env, SEESAW_TOKEN: TOKEN, SEESAW_API: '' }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('failed VMs in the CLI', () => {
  let clients: Clients;
  let server: ApiServer;
  beforeAll(async () => {
    clients = await freshStores();
    await aNode(clients, 'n1', { vms: { ok: 1 } });
    await aVm(clients, 'ok', 'n1');
    await aVm(clients, 'bad', 'n1');
    await failVm(clients, {
      id: 'bad',
      node: 'n1',
      fence: 1,
      reason: 'timeout in run after 500 ms',
      next: afterFailure(undefined, 0, 1),
      now: 1,
    });
    server = await startApiServer({ clients, token: TOKEN, port: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('shows the reason in vm ls and vm show', async () => {
    const ls = await seesaw(['vm', 'ls'], server.url);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/REASON/);
    expect(ls.stdout).toMatch(/bad\s+n1\s+FAILED.*timeout in run after 500 ms/);
    const show = await seesaw(['vm', 'show', 'bad'], server.url);
    expect(show.stdout).toMatch(/reason\s+timeout in run after 500 ms/);
    expect(show.stdout).toMatch(/restart policy\s+never/);
  });

  it('refuses to restart a VM that is not FAILED, with a message and a non-zero exit', async () => {
    const out = await seesaw(['vm', 'restart', 'ok', '--no-wait'], server.url);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/only a FAILED VM can be restarted/);
    expect((await findVm(clients, 'ok'))?.state).toBe('RUNNING');
  });

  it('restarts a FAILED VM', async () => {
    const out = await seesaw(['vm', 'restart', 'bad', '--no-wait'], server.url);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/bad restarting on n1/);
    expect(await findVm(clients, 'bad')).toMatchObject({ state: 'PENDING', fence: 2 });
  });

  it('rejects a bad --restart policy before calling the API', async () => {
    const out = await seesaw(['vm', 'create', '--guest', 'cpu', '--restart', 'always'], server.url);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/--restart wants 'never' or 'on-failure'/);
  });
});
