// The migration bench's agent in a process of its own (bench/suites/_migration-agent.ts, started by
// startChild as the bench's "processes" topology does): it registers its node from that process, sends
// its pauses when asked, stops cleanly (lease released) when told, and ends when the bench dies.
import { spawn } from 'node:child_process';
import { describe, expect, inject, it } from 'vitest';
import { startChild } from '../../bench/suites/_migration-node.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { freshStores } from '../support/stores.ts';

const argsFor = (clients: Clients, id: string) => ({
  id,
  ...inject('stores'),
  tableName: clients.tableName,
  bucketName: clients.bucketName,
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the migration bench agent in a child process', () => {
  it('registers and runs its node, reports its pauses and releases its lease on stop', async () => {
    const clients = await freshStores();
    const child = startChild(argsFor(clients, 'bench-a'), () => {});
    try {
      await child.ready;
      // Its loop runs there (nothing in this process runs an agent): its heartbeats bring a report.
      let node = await getNode(clients, 'bench-a');
      for (
        const end = Date.now() + 10_000;
        !node.report && Date.now() < end;
        node = await getNode(clients, 'bench-a')
      )
        await new Promise((r) => setTimeout(r, 100));
      expect(node.report).toBeDefined();
      expect(node.capacity).toBe(40_000_000);
      expect(node.memCapacityPages).toBe(8192);
      expect(node.leaseUntil).toBeGreaterThan(Date.now());
      const pauses = await child.pauses();
      expect(Array.isArray(pauses.gcs) && Array.isArray(pauses.stalls)).toBe(true);
      child.alive();
    } finally {
      await child.stop();
    }
    expect((await getNode(clients, 'bench-a')).leaseUntil).toBeLessThanOrEqual(Date.now());
    expect(alive(child.pid!)).toBe(false);
    expect(() => child.alive()).toThrow(/bench-a exited/);
    clients.dynamo.destroy();
    clients.s3.destroy();
  });

  it('says why when its agent cannot start, and ends', async () => {
    const clients = await freshStores();
    const child = startChild({ ...argsFor(clients, 'bench-a'), tableName: 'no-such-table' }, () => {});
    await expect(child.ready).rejects.toThrow(/agent bench-a failed: .*ResourceNotFound/s);
    await child.stop();
    expect(alive(child.pid!)).toBe(false);
    clients.dynamo.destroy();
    clients.s3.destroy();
  });

  it('ends when the bench process that started it is killed', async () => {
    const clients = await freshStores();
    // A stand-in for the bench: starts the agent, prints its pid once it is ready, and dies at once.
    const script = `
      import { startChild } from './bench/suites/_migration-node.ts';
      const child = startChild(${JSON.stringify(argsFor(clients, 'bench-b'))}, () => {});
      await child.ready;
      console.log(child.pid);
      process.kill(process.pid, 'SIGKILL');
    `;
    const bench = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    bench.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const signal = await new Promise((resolve) => bench.once('exit', (_code, sig) => resolve(sig)));
    expect(signal).toBe('SIGKILL');
    const pid = Number(out.trim());
    expect(pid).toBeGreaterThan(0);
    try {
      const end = Date.now() + 10_000;
      while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(alive(pid)).toBe(false);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL'); // a failed run leaves no agent behind
    }
    clients.dynamo.destroy();
    clients.s3.destroy();
  });
});
