// The qemu driver behind the Driver contract, on nodes that also run the wasm kernel: a real x86
// guest and a WebAssembly guest side by side, the x86 one migrated by the contract's precopy and
// finalState into another node's driver set, its counter going on where it stopped.
import { tmpdir } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { combineDrivers, type DriverSet, wasmDriver } from '../../node-agent/drivers/index.ts';
import { parseLine } from '../../node-agent/drivers/qemu/counter-image.ts';
import { type QemuDriver, qemuDriver, qemuDriverIfAvailable } from '../../node-agent/drivers/qemu/index.ts';
import { createImageStore, s3Blobs } from '../../shared/storage/image-store.ts';
import { freshStores } from '../support/stores.ts';
import { aKernel, runTicks } from '../unit/kernel/fixtures.ts';
import { counterDigestFor, digestAt, QEMU, qemuNodes, waitLines } from './support.ts';

describe('mixed nodes: the wasm kernel and the qemu driver behind one driver set', () => {
  const qemuNode = qemuNodes('contract');
  let aNode: (id: string) => { node: DriverSet; qemu: QemuDriver; kernel: ReturnType<typeof aKernel> };

  beforeAll(async () => {
    const clients = await freshStores();
    const blobs = s3Blobs(clients);
    const images = createImageStore(clients);
    aNode = (nodeId) => {
      const qemu = qemuNode(nodeId, { blobs });
      const kernel = aKernel(images, { nodeId });
      return { node: combineDrivers([wasmDriver(kernel), qemuDriver(qemu)]), qemu, kernel };
    };
  });

  it('runs both kinds of guest and migrates the x86 one with QEMU pre-copy, reporting rounds and downtime', async () => {
    const a = aNode('a');
    const b = aNode('b');
    expect(a.node.offers).toEqual(['wasm', 'qemu']);
    await a.node.start({ id: 'w', fence: 1, guest: { kind: 'cpu' }, memPages: 2 });
    await a.node.start({ id: 'x', fence: 1, guest: { kind: 'qemu:counter' }, memPages: 256 });
    expect(a.kernel.has('x')).toBe(false);
    expect(a.node.running().sort()).toEqual(['w', 'x']);
    await waitLines(a.qemu, 'x', 3);
    runTicks(a.kernel, 2);
    const measured = await a.node.measure();
    expect(measured.map((m) => m.id).sort()).toEqual(['w', 'x']);
    const x = measured.find((m) => m.id === 'x')!;
    expect(x.residentPages).toBeGreaterThanOrEqual(256);
    expect(x.digest).toMatch(/^serial:/);

    const round = await a.node.precopy('x');
    expect(round).toMatchObject({ bytes: 0, pages: 0 }); // QEMU pre-copies in finalState
    const final = await a.node.finalState('x');
    expect(a.node.running()).toEqual(['w']);
    expect(final.precopy!.bytes).toBeGreaterThan(0);
    expect(final.precopy!.rounds).toBeGreaterThanOrEqual(1);
    expect(final.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(final.bytes).toBeGreaterThan(final.precopy!.bytes);
    const stoppedAt = a.qemu.processOf('x').serial.sync().lines;
    expect(await a.node.digest('x')).toBe(digestAt(stoppedAt));
    await a.node.stop('x');

    await b.node.start({
      id: 'x',
      fence: 2,
      guest: { kind: 'qemu:counter' },
      memPages: 256,
      image: final.image,
      paused: true,
    });
    expect(b.node.running()).toEqual([]);
    await b.node.resume('x');
    await waitLines(b.qemu, 'x', stoppedAt + 2);
    expect(parseLine(b.qemu.processOf('x').serial.tail.split('\n')[0]!)?.counter).toBe(stoppedAt + 1);
    const bDigest = await b.node.digest('x');
    expect(bDigest).toBe(counterDigestFor(bDigest));
  });

  it('suspends an x86 guest in place and resumes it, and a resume gives up a migration not handed over', async () => {
    const a = aNode('a');
    await a.node.start({ id: 'y', fence: 1, guest: { kind: 'qemu:counter' }, memPages: 256 });
    await waitLines(a.qemu, 'y', 2);
    await a.node.suspend('y');
    expect(a.node.running()).toEqual([]);
    const full = await a.node.checkpoint('y', 'full');
    expect(full.pages).toBeGreaterThan(0);
    await a.node.resume('y');
    const at = a.qemu.processOf('y').serial.sync().lines;
    await waitLines(a.qemu, 'y', at + 2);

    // a QEMU pre-copy started by another path and then resumed: the guest runs on here
    await a.qemu.precopy('y');
    expect(a.node.running()).toEqual([]);
    await a.node.resume('y');
    expect(a.node.running()).toEqual(['y']);
    const again = a.qemu.processOf('y').serial.sync().lines;
    await waitLines(a.qemu, 'y', again + 2);
    const aDigest = await a.node.digest('y');
    expect(aDigest).toBe(counterDigestFor(aDigest));
  });

  it('reports a guest whose QEMU process died as failed', async () => {
    const a = aNode('a');
    await a.node.start({ id: 'z', fence: 1, guest: { kind: 'qemu:counter' }, memPages: 256 });
    expect(a.node.failure('z')).toBeUndefined();
    await a.qemu.processOf('z').kill();
    expect(a.node.failure('z')).toMatch(/QEMU process \d+ exited/);
  });

  it('offers qemu only where qemu-system-x86_64 runs', async () => {
    const options = {
      nodeId: 'n',
      workDir: tmpdir(), // nothing is started
      blobs: s3Blobs(await freshStores()),
      weights: { cpu: 1, io: 1, mem: 1 },
      clock: Date.now,
    };
    expect(
      await qemuDriverIfAvailable({ ...options, binary: '/nonexistent/qemu-system-x86_64' }),
    ).toBeUndefined();
    const here = await qemuDriverIfAvailable({ ...options, binary: QEMU, accel: 'tcg' });
    expect(here?.driver.name).toBe('qemu');
    expect(here?.version).toMatch(/QEMU emulator version/);
  });
});
