// Real x86 VMs under the node agent: two agents (on a virtual clock for their leases, with dynalite
// and s3rver) run the wasm kernel and the qemu driver side by side. An x86 counter guest migrates
// between them by the ordinary protocol and counts on; a node that loses its lease stops its QEMU.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { type Agent, createAgent } from '../../node-agent/agent/agent.ts';
import { parseLine } from '../../node-agent/drivers/qemu/counter-image.ts';
import { kernelWithQemu } from '../../node-agent/drivers/qemu/kernel-bridge.ts';
import { readStateManifest } from '../../node-agent/drivers/qemu/state-store.ts';
import { createKernel } from '../../node-agent/kernel/index.ts';
import { orderDeadline } from '../../shared/domain/protocol.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore, type ImageStore, s3Blobs } from '../../shared/storage/image-store.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { createVm, getVm, orderMigration } from '../../shared/storage/vms.ts';
import { freshStores } from '../support/stores.ts';
import { qemuNodes, WAIT } from './support.ts';

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} };
const X86 = { kind: 'qemu:counter' };

describe('node agents running x86 guests through the qemu driver', () => {
  let clients: Clients;
  let images: ImageStore;
  let now = 1_000_000;
  const clock = () => now;
  const qemuNode = qemuNodes('agent');

  const anAgent = (id: string) => {
    const spec = { id, capacity: 1e9, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 8192 };
    const wasm = createKernel(
      { nodeId: id, capacity: spec.capacity, weights: spec.weights, tickMs: 10, clock },
      { images },
    );
    const qemu = qemuNode(id, { blobs: s3Blobs(clients), weights: spec.weights });
    const agent = createAgent(
      { clients, kernel: kernelWithQemu(wasm, qemu), clock, log: quiet, images },
      {
        node: spec,
        lease: { leaseMs: 1000, fenceMarginMs: 200 },
        checkpointMs: 60_000,
        cooldownMs: 5000,
        timings: { orderMs: 20_000, takeMs: 20_000, perPageMs: 0 },
      },
    );
    return { agent, qemu };
  };
  /** Periods of 100 ms on the agents' clock until `done` holds (each waits for the agents' operations). */
  const cycleUntil = async (agents: Agent[], done: () => Promise<boolean>, max = 40) => {
    for (let i = 0; i < max; i += 1) {
      if (await done()) return;
      now += 100;
      for (const a of agents) a.tick();
      for (const a of agents) {
        await a.heartbeat(100);
        await a.reconcile();
        await a.idle();
      }
    }
    throw new Error(`not done after ${max} periods`);
  };

  beforeAll(async () => {
    clients = await freshStores();
    images = createImageStore(clients);
  });

  it('migrates a real x86 VM between two agents, beside a wasm VM, and its counter goes on', async () => {
    const a = anAgent('q1');
    const b = anAgent('q2');
    await a.agent.register();
    await b.agent.register();
    await createVm(clients, { id: 'x86', owner: 'q1', guest: X86, memPages: 256 }, now);
    await createVm(clients, { id: 'wasm', owner: 'q1', guest: { kind: 'idle' }, memPages: 1 }, now);
    await cycleUntil([a.agent, b.agent], async () => (await getVm(clients, 'x86')).state === 'RUNNING');
    // the x86 guest runs once QEMU has answered the queued QMP `cont` (the bridge's resume)
    await a.qemu.processOf('x86').serial.wait((s) => s.lines >= 3, WAIT);
    await vi.waitFor(() => expect(a.agent.kernel.running().sort()).toEqual(['wasm', 'x86']), WAIT);

    const manifests = async () =>
      (await s3Blobs(clients).list('images/x86/')).filter((k) => k.endsWith('manifest.json'));
    const before = await manifests();
    const vm = await getVm(clients, 'x86');
    await orderMigration(clients, 'x86', vm.fence, {
      id: 'x86-1',
      from: 'q1',
      to: 'q2',
      phase: 'ORDERED',
      deadline: orderDeadline(now, 256),
      orderedAt: now,
      origin: 'test',
    });
    await cycleUntil([a.agent, b.agent], async () => {
      const v = await getVm(clients, 'x86');
      return v.owner === 'q2' && v.state === 'RUNNING' && !v.migration;
    });
    const moved = await getVm(clients, 'x86');
    expect(moved).toMatchObject({ fence: vm.fence + 1, moves: 1 });
    // one saved state per move: QEMU's own pre-copy, no whole-guest pre-copy rounds by the agent
    expect((await manifests()).filter((k) => !before.includes(k))).toEqual([moved.image!.manifest]);
    await vi.waitFor(() => expect(b.agent.kernel.running()).toEqual(['x86']), WAIT);
    expect(a.qemu.has('x86')).toBe(false);
    expect(a.agent.kernel.running()).toEqual(['wasm']);

    // the target's first line is the one after the last line of the state it loaded
    const saved = await readStateManifest(s3Blobs(clients), moved.image!.manifest);
    const target = b.qemu.processOf('x86');
    await target.serial.wait((s) => s.lines >= saved.serial.lines + 2, WAIT);
    expect(parseLine(target.serial.tail.split('\n')[0]!)?.counter).toBe(saved.serial.lines + 1);

    const record = await getMigration(clients, 'x86-1');
    expect(record).toMatchObject({ outcome: 'completed', from: 'q1', to: 'q2' });
    expect(record?.bytes?.final).toBeGreaterThan(0);
  });

  it('stops the QEMU process of a node that loses its lease (self-fencing)', async () => {
    const a = anAgent('f1');
    await a.agent.register();
    await createVm(clients, { id: 'fenced', owner: 'f1', guest: X86, memPages: 256 }, now);
    await cycleUntil([a.agent], async () => (await getVm(clients, 'fenced')).state === 'RUNNING');
    const process = a.qemu.processOf('fenced');
    await process.serial.wait((s) => s.lines >= 1, WAIT);
    // no heartbeats: ticks alone must stop the guest before the lease lapses
    for (let i = 0; i < 12; i += 1) {
      now += 100;
      a.agent.tick();
    }
    expect(a.agent.status()).toBe('fenced');
    const exit = await Promise.race([process.exited, new Promise((r) => setTimeout(() => r('alive'), WAIT))]);
    expect(exit).toBeInstanceOf(Error);
    expect(process.alive).toBe(false);
    expect(a.qemu.has('fenced')).toBe(false);
  });

  it('cancels an x86 start waiting for queued QMP work of its VM when a fence stops the VM meanwhile', async () => {
    const { agent, qemu } = anAgent('w1');
    const kernel = agent.kernel;
    const launch = { id: 'reload', fence: 1, guest: X86, memPages: 256, paused: true };
    await kernel.start(launch);
    // the agent drops a copy before it loads the VM anew (lifecycle's load): the QMP stop is queued
    kernel.stop('reload');
    const again = kernel.start({ ...launch, fence: 2 });
    while (qemu.has('reload')) await Promise.resolve(); // the old process is being killed
    expect(kernel.has('reload')).toBe(true); // the waiting start is here already
    kernel.stop('reload'); // the node fences itself now
    await expect(again).rejects.toThrow(/stopped on node w1 while it started/);
    expect(kernel.has('reload')).toBe(false);
    expect(qemu.has('reload')).toBe(false);
  });
});
