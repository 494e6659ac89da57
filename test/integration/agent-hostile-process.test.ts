// A real agent process (`node bin/seesaw.js agent`) running hostile guests beside a normal one,
// against dynalite and s3rver: the hostile VMs end FAILED with their reasons, the normal VM keeps
// running, and the node keeps renewing its lease on the real clock, heartbeat after heartbeat.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLive } from '../../shared/domain/placement.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { createVm, getVm } from '../../shared/storage/vms.ts';
import { GROW_RUN, SPIN_RUN, TRAP_DIGEST, wasmOf } from '../support/hostile.ts';
import { freshStores, storeEnv } from '../support/stores.ts';

const LEASE_MS = 2000;
const REPORT_MS = 250;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an agent process with hostile guests', () => {
  let clients: Clients;
  let child: ChildProcess;
  const output: string[] = [];

  beforeAll(async () => {
    clients = await freshStores();
    const images = createImageStore(clients);
    await images.putModule('spin', await wasmOf(SPIN_RUN));
    await images.putModule('trap', await wasmOf(TRAP_DIGEST));
    await images.putModule('grow', await wasmOf(GROW_RUN));
    child = spawn(
      process.execPath,
      [
        'bin/seesaw.js',
        'agent',
        '--node',
        'hp',
        '--capacity',
        '4000000',
        '--weights',
        'cpu=1,io=0.2,mem=0.1',
        '--lease-ms',
        String(LEASE_MS),
        '--report-ms',
        String(REPORT_MS),
        '--tick-ms',
        '50',
        '--reconcile-ms',
        '100',
      ],
      { env: { ...process.env, ...storeEnv(clients) }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  });

  afterAll(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });

  it('fails the hostile VMs, keeps the normal one running and the lease live for several lease periods', async () => {
    for (let i = 0; i < 100 && !(await getNode(clients, 'hp').catch(() => undefined)); i++) await sleep(100);
    const now = Date.now();
    const guest = { kind: 'memory', params: { wsPages: 4, rate: 100_000 } };
    await createVm(clients, { id: 'ok', owner: 'hp', guest, memPages: 8 }, now);
    await createVm(clients, { id: 'spin', owner: 'hp', guest: { kind: 'module:spin' }, memPages: 2 }, now);
    await createVm(clients, { id: 'trap', owner: 'hp', guest: { kind: 'module:trap' }, memPages: 2 }, now);
    await createVm(clients, { id: 'grow', owner: 'hp', guest: { kind: 'module:grow' }, memPages: 2 }, now);
    // Three lease periods, sampled every heartbeat: the lease never lapses, and it moves on.
    const leases: number[] = [];
    const lapses: number[] = [];
    const end = Date.now() + 3 * LEASE_MS;
    while (Date.now() < end) {
      await sleep(REPORT_MS);
      const node = await getNode(clients, 'hp');
      leases.push(node.leaseUntil);
      if (!isLive(node, Date.now())) lapses.push(Date.now());
    }
    expect(lapses, output.join('')).toEqual([]);
    expect(new Set(leases).size).toBeGreaterThan(3);
    const states = await Promise.all(['ok', 'spin', 'trap', 'grow'].map((id) => getVm(clients, id)));
    expect(states.map((vm) => [vm.id, vm.state, vm.reason])).toEqual([
      ['ok', 'RUNNING', undefined],
      ['spin', 'FAILED', expect.stringMatching(/^timeout in run after \d+ ms$/)],
      ['trap', 'FAILED', 'trap in digest: unreachable'],
      ['grow', 'FAILED', 'memory limit of 2 pages exceeded'],
    ]);
    expect((await getNode(clients, 'hp')).report?.vms.ok?.load).toBeGreaterThan(0);
    expect(child.exitCode).toBeNull();
  }, 60_000);
});
