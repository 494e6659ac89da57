// cpuLimit is a limit the kernel enforces; targetLoad is the patent's programmed target load (a
// sharing weight and a selection hint), not a limit.
import { describe, expect, it } from 'vitest';
import { createImageStoreOn, memoryBlobs } from '../../../shared/storage/image-store.ts';
import { aKernel, runTicks } from './fixtures.ts';

const store = () => createImageStoreOn(memoryBlobs());

describe('cpuLimit in the kernel', () => {
  it('runs a cpu guest with cpuLimit 0.5 at about half a core on a node with room', async () => {
    const kernel = aKernel(store());
    await kernel.start({ id: 'limited', fence: 1, guest: { kind: 'cpu' }, memPages: 1, cpuLimit: 0.5 });
    await kernel.start({ id: 'free', fence: 1, guest: { kind: 'cpu' }, memPages: 1 });
    runTicks(kernel, 20);
    const f = Object.fromEntries(kernel.measure().map((m) => [m.id, m]));
    expect(f.limited!.factors.cpu).toBeCloseTo(0.5, 2);
    expect(f.free!.factors.cpu).toBeCloseTo(1, 2);
    // Capped demand is not steal: the guest got all the limit allows.
    expect(f.limited!.steal).toBe(0);
  });

  it('does not limit a VM by its target load', async () => {
    const kernel = aKernel(store());
    await kernel.start({ id: 'target', fence: 1, guest: { kind: 'cpu' }, memPages: 1, targetLoad: 0.5 });
    runTicks(kernel, 20);
    expect(kernel.measure()[0]!.factors.cpu).toBeCloseTo(1, 2);
  });
});
