// Ctrl-C while `seesaw vm migrate` waits: the wait stops, the migration does not, and the CLI says
// what is still in flight and how to follow it.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { findVm } from '../../shared/storage/vms.ts';
import { aNode, aServedApi, aVm } from '../api/support.ts';
import { CLI, scratchDir } from './support.ts';

const TOKEN = 'interrupt-token';

describe('Ctrl-C during a wait', () => {
  // No agents: the order stays ORDERED, so the CLI waits until interrupted.
  const server = aServedApi(TOKEN, async (clients) => {
    await aNode(clients, 'n1', { vms: { 'vm-1': 1 } });
    await aNode(clients, 'n2');
    await aVm(clients, 'vm-1', 'n1');
  });

  it('prints the migration still in flight and `seesaw vm show`, and exits 130', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'vm', 'migrate', 'vm-1', '--to', 'n2', '--api', server.url, '--token', TOKEN],
      {
        cwd: scratchDir(),
        env: { ...process.env, SEESAW_API: '', SEESAW_TOKEN: '', XDG_CONFIG_HOME: scratchDir() },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    let order: string | undefined;
    for (let i = 0; i < 200 && !order; i++) {
      order = (await findVm(server.clients, 'vm-1'))?.migration?.id;
      if (!order) await new Promise((r) => setTimeout(r, 50));
    }
    expect(order).toBeDefined();
    await new Promise((r) => setTimeout(r, 800)); // into the polling loop
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stdout).toBe('');
    expect(stderr.trim()).toBe(
      `stopped waiting; still in flight: migration ${order} of vm-1 n1 → n2 (ORDERED) — follow it with \`seesaw vm show vm-1\``,
    );
    // The migration itself goes on.
    expect((await findVm(server.clients, 'vm-1'))?.migration?.id).toBe(order);
  });
});
