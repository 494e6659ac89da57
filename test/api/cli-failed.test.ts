import { describe, expect, it } from 'vitest';
import { afterFailure } from '../../shared/domain/restart.ts';
import { failVm, findVm } from '../../shared/storage/vms.ts';
import { seesaw as run } from '../cli/support.ts';
import { aNode, aServedApi, aVm } from './support.ts';

const TOKEN = 'cli-failed-token';
const seesaw = (args: string[], url: string) =>
  run([...args, '--api', url], { env: { SEESAW_TOKEN: TOKEN } });

describe('failed VMs in the CLI', () => {
  const server = aServedApi(TOKEN, async (clients) => {
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
    expect((await findVm(server.clients, 'ok'))?.state).toBe('RUNNING');
  });

  it('restarts a FAILED VM', async () => {
    const out = await seesaw(['vm', 'restart', 'bad', '--no-wait'], server.url);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/bad restarting on n1/);
    expect(await findVm(server.clients, 'bad')).toMatchObject({ state: 'PENDING', fence: 2 });
  });

  it('rejects a bad --restart policy before calling the API', async () => {
    const out = await seesaw(['vm', 'create', '--guest', 'cpu', '--restart', 'always'], server.url);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(/--restart wants 'never' or 'on-failure'/);
  });
});
