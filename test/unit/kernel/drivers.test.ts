// The kernel as the `wasm` driver, and a node's drivers routed by guest kind.
import { describe, expect, it } from 'vitest';
import { combineDrivers, type Driver, wasmDriver } from '../../../node-agent/drivers/index.ts';
import { createImageStoreOn, memoryBlobs } from '../../../shared/storage/image-store.ts';
import { aKernel, runTicks } from './fixtures.ts';

const launch = (id: string, kind = 'cpu') => ({ id, fence: 1, guest: { kind }, memPages: 2 });

/** A stand-in `qemu` driver that only records which VMs it was given. */
function aFakeQemu(): Driver & { started: string[] } {
  const started: string[] = [];
  return {
    name: 'qemu',
    started,
    start: async (vm) => {
      started.push(vm.id);
    },
    stop: (id) => {
      started.splice(started.indexOf(id), 1);
    },
    suspend: () => {},
    resume: () => {},
    has: (id) => started.includes(id),
    running: () => [...started],
    failure: () => undefined,
    setTargetLoad: () => {},
    measure: async () => [],
    digest: async () => 'q',
    checkpoint: () => Promise.reject(new Error('not here')),
    precopy: () => Promise.reject(new Error('not here')),
    finalState: () => Promise.reject(new Error('not here')),
  };
}

describe('the wasm driver', () => {
  it('migrates a running guest by pre-copy and final state, and the target continues its digest', async () => {
    const images = createImageStoreOn(memoryBlobs());
    const source = aKernel(images);
    const driver = wasmDriver(source);
    await driver.start({
      ...launch('vm-1', 'memory'),
      guest: { kind: 'memory', params: { wsPages: 2 } },
      memPages: 4,
    });
    runTicks(source, 3);
    const first = await driver.precopy('vm-1');
    expect(first.pages).toBeGreaterThan(0);
    runTicks(source, 2);
    const final = await driver.finalState('vm-1');
    expect(driver.running()).toEqual([]);
    const digest = await driver.digest('vm-1');
    runTicks(source, 2); // a suspended guest does not run: its digest stays
    expect(await driver.digest('vm-1')).toBe(digest);

    const target = wasmDriver(aKernel(images, { nodeId: 'node-b' }));
    await target.start({
      ...launch('vm-1'),
      guest: { kind: 'memory', params: { wsPages: 2 } },
      memPages: 4,
      fence: 2,
      image: final.image,
      paused: true,
    });
    expect(await target.digest('vm-1')).toBe(digest);
    await target.resume('vm-1');
    expect(target.running()).toEqual(['vm-1']);
  });
});

describe('a node with several drivers', () => {
  it('sends qemu:<image> guests to qemu and all others to the kernel, and routes by VM after that', async () => {
    const kernel = aKernel(createImageStoreOn(memoryBlobs()));
    const qemu = aFakeQemu();
    const node = combineDrivers([wasmDriver(kernel), qemu]);
    expect(node.offers).toEqual(['wasm', 'qemu']);
    await node.start(launch('w', 'cpu'));
    await node.start(launch('q', 'qemu:counter.img'));
    expect(qemu.started).toEqual(['q']);
    expect(kernel.has('w')).toBe(true);
    expect(kernel.has('q')).toBe(false);
    expect(await node.digest('q')).toBe('q');
    node.tick();
    expect((await node.measure()).map((m) => m.id)).toEqual(['w']);
    await node.stop('q');
    expect(node.has('q')).toBe(false);
    expect(node.running()).toEqual(['w']);
  });

  it('refuses a guest whose driver the node does not offer, and a VM it already holds', async () => {
    const node = combineDrivers([wasmDriver(aKernel(createImageStoreOn(memoryBlobs())))]);
    expect(node.offers).toEqual(['wasm']);
    await expect(node.start(launch('q', 'qemu:img'))).rejects.toThrow(/needs the qemu driver/);
    await node.start(launch('w'));
    await expect(node.start(launch('w'))).rejects.toThrow(/already on this node/);
    expect(() => node.suspend('nope')).toThrow(/nope/);
    expect(() => combineDrivers([aFakeQemu(), aFakeQemu()])).toThrow(/twice/);
  });
});
