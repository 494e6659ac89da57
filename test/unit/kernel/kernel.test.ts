import { describe, expect, it } from 'vitest';
import { MAX_CHAIN_PACKS, UNITS_PER_CORE } from '../../../node-agent/kernel/index.ts';
import { Conflict, InvalidInput, NotFound } from '../../../shared/storage/errors.ts';
import { createImageStoreOn, memoryBlobs } from '../../../shared/storage/image-store.ts';
import { wasmOf } from '../../support/hostile.ts';
import { aClock, aKernel, CLOCK_GUEST, runTicks, TICK_MS } from './fixtures.ts';

const store = () => createImageStoreOn(memoryBlobs());
const cpu = (rate: number) => ({ kind: 'cpu', params: { rate } });

describe('the VM kernel', () => {
  it('slows VMs of an over-capacity node by their shares and reports the steal', async () => {
    // 1,000,000 units/s at 100 ms ticks: 100,000 units per tick for three VMs that want 100,000 each.
    const kernel = aKernel(store(), { capacity: 1_000_000 });
    await kernel.start({ id: 'big', fence: 1, guest: cpu(1_000_000), memPages: 1, targetLoad: 2 });
    await kernel.start({ id: 'a', fence: 1, guest: cpu(1_000_000), memPages: 1, targetLoad: 1 });
    await kernel.start({ id: 'b', fence: 1, guest: cpu(1_000_000), memPages: 1, targetLoad: 1 });
    runTicks(kernel, 10);
    const m = Object.fromEntries(kernel.measure().map((x) => [x.id, x]));
    expect(m.big).toMatchObject({ workDemanded: 1_000_000, workDone: 500_000, steal: 500_000 });
    expect(m.a).toMatchObject({ workDemanded: 1_000_000, workDone: 250_000, steal: 750_000 });
    expect(m.b).toMatchObject({ workDone: 250_000, steal: 750_000 });
    expect(m.big!.factors.cpu).toBeCloseTo(0.5);
    expect(m.a!.factors.cpu).toBeCloseTo(0.25);
    expect(kernel.schedule().find((e) => e.vmId === 'big')).toMatchObject({
      targetLoad: 2,
      info: { demand: 100_000, share: 50_000, paused: false },
    });
  });

  it('runs every VM at its full demand when the node has room, with no steal', async () => {
    const kernel = aKernel(store(), { capacity: 4_000_000 });
    await kernel.start({ id: 'a', fence: 1, guest: cpu(1_000_000), memPages: 1 });
    await kernel.start({ id: 'b', fence: 1, guest: cpu(500_000), memPages: 1 });
    runTicks(kernel, 5);
    const [a, b] = kernel.measure();
    expect(a).toMatchObject({ workDone: 500_000, steal: 0 });
    expect(b).toMatchObject({ workDone: 250_000, steal: 0 });
  });

  it('measures cpu, memory and io guests as their names say', async () => {
    const kernel = aKernel(store());
    await kernel.start({ id: 'cpu', fence: 1, guest: { kind: 'cpu' }, memPages: 72 });
    await kernel.start({
      id: 'memory',
      fence: 1,
      guest: { kind: 'memory', params: { wsPages: 64 } },
      memPages: 72,
    });
    await kernel.start({ id: 'io', fence: 1, guest: { kind: 'io' }, memPages: 72 });
    runTicks(kernel, 10);
    const f = Object.fromEntries(kernel.measure().map((x) => [x.id, x.factors]));
    expect(f.cpu!.cpu).toBeCloseTo(1); // its default rate is one virtual core
    expect(f.cpu!.cpu).toBeGreaterThan(f.memory!.cpu);
    expect(f.cpu!.cpu).toBeGreaterThan(f.io!.cpu);
    expect(f.memory!.mem).toBeGreaterThan(f.cpu!.mem);
    expect(f.memory!.mem).toBeGreaterThan(f.io!.mem);
    expect(f.memory!.paging!).toBeGreaterThan(f.io!.paging!);
    expect(f.cpu!.paging).toBe(0);
    expect(f.io!.io).toBeGreaterThan(0);
    expect(f.cpu!.io).toBe(0);
    expect(f.memory!.io).toBe(0);
  });

  it('follows a utilisation series with the trace guest', async () => {
    const kernel = aKernel(store());
    await kernel.start({ id: 't', fence: 1, guest: { kind: 'trace', series: [10, 80, 0] }, memPages: 1 });
    const done: number[] = [];
    for (let i = 0; i < 4; i++) {
      runTicks(kernel, 1);
      done.push(kernel.measure()[0]!.workDone);
    }
    // 1,000,000 units/s at 100 %, 100 ms ticks
    expect(done).toEqual([10_000, 80_000, 0, 10_000]);
  });

  it('continues the same digest after a checkpoint and restore on another kernel', async () => {
    const images = store();
    const a = aKernel(images);
    const b = aKernel(images, { nodeId: 'node-b' });
    const never = aKernel(store(), { nodeId: 'node-c' });
    const guest = { kind: 'memory', params: { wsPages: 8, rate: 50_000 } };
    await a.start({ id: 'vm', fence: 1, guest, memPages: 16 });
    await never.start({ id: 'vm', fence: 1, guest, memPages: 16 });
    runTicks(a, 3);
    const full = await a.checkpoint('vm', 'full');
    runTicks(a, 2);
    a.pause('vm');
    const delta = await a.checkpoint('vm', 'delta');
    a.stop('vm');
    expect(full.pages).toBe(8);
    expect(delta.pages).toBeLessThanOrEqual(8);
    expect(delta.image.seq).toBe(2);
    await b.start({ id: 'vm', fence: 2, guest, memPages: 16, image: delta.image });
    runTicks(b, 4);
    runTicks(never, 9);
    expect(b.digest('vm')).toBe(never.digest('vm'));
    const next = await b.checkpoint('vm', 'delta');
    expect(next.image).toMatchObject({ seq: 3, manifest: 'images/vm/2/3/manifest.json' });
  });

  it('writes a full image instead of a delta once the chain points into too many packs', async () => {
    const images = store();
    // dirties one new page a tick, so every delta adds a pack the chain still needs
    await images.putModule(
      'stripe',
      await wasmOf(`(module (memory (export "memory") 64)
        (global $n (export "n") (mut i32) (i32.const 0))
        (func (export "demand") (param i32) (result i32) (i32.const 1))
        (func (export "run") (param i32) (result i32)
          (i32.store (i32.mul (global.get $n) (i32.const 65536)) (i32.add (global.get $n) (i32.const 1)))
          (global.set $n (i32.add (global.get $n) (i32.const 1)))
          (i32.const 1))
        (func (export "digest") (result i64) (i64.extend_i32_u (global.get $n))))`),
    );
    const kernel = aKernel(images);
    await kernel.start({ id: 'vm', fence: 1, guest: { kind: 'module:stripe' }, memPages: 64 });
    const kinds: string[] = [];
    for (let i = 0; i < MAX_CHAIN_PACKS + 2; i++) {
      runTicks(kernel, 1);
      const { image } = await kernel.checkpoint('vm', 'delta');
      kinds.push((await images.getImage(image.manifest)).manifest.kind);
    }
    expect(kinds.slice(0, 2)).toEqual(['full', 'delta']);
    expect(kinds.indexOf('full', 1)).toBe(MAX_CHAIN_PACKS);
  });

  it('marks pages that disk_read fills in the dirty map of a guest that keeps one', async () => {
    const images = store();
    // tick 1 writes page 1 to disk (and marks page 1); later ticks read it back into page 2 unmarked
    await images.putModule(
      'reader',
      await wasmOf(`(module
        (import "env" "disk_read" (func $read (param i32 i32 i32) (result i32)))
        (import "env" "disk_write" (func $write (param i32 i32 i32) (result i32)))
        (memory (export "memory") 3)
        (global (export "dirty_map") i32 (i32.const 0))
        (global $t (export "t") (mut i32) (i32.const 0))
        (func (export "run") (param i32) (result i32)
          (if (i32.eqz (global.get $t))
            (then (i32.store (i32.const 65536) (i32.const 77)) (i32.store8 (i32.const 1) (i32.const 1))
                  (drop (call $write (i32.const 0) (i32.const 65536) (i32.const 4))))
            (else (drop (call $read (i32.const 0) (i32.const 131072) (i32.const 4)))))
          (global.set $t (i32.add (global.get $t) (i32.const 1)))
          (i32.const 0))
        (func (export "digest") (result i64) (i64.load32_u (i32.const 131072))))`),
    );
    const kernel = aKernel(images);
    await kernel.start({ id: 'vm', fence: 1, guest: { kind: 'module:reader' }, memPages: 3 });
    runTicks(kernel, 1);
    await kernel.checkpoint('vm', 'full');
    runTicks(kernel, 1);
    const { image } = await kernel.checkpoint('vm', 'delta');
    const { manifest } = await images.getImage(image.manifest);
    expect(manifest.pages.map((e) => e[0])).toContain(2);
    const other = aKernel(images, { nodeId: 'node-b' });
    await other.start({ id: 'vm', fence: 2, guest: { kind: 'module:reader' }, memPages: 3, image });
    expect(other.digest('vm')).toBe((77).toString(16).padStart(16, '0'));
  });

  it('keeps a paused VM loaded but unscheduled until resumed', async () => {
    const kernel = aKernel(store());
    await kernel.start({ id: 'vm', fence: 1, guest: { kind: 'cpu' }, memPages: 1, paused: true });
    expect(kernel.running()).toEqual([]);
    runTicks(kernel, 2);
    expect(kernel.measure()[0]!.workDone).toBe(0);
    kernel.resume('vm');
    runTicks(kernel, 2);
    expect(kernel.measure()[0]!.workDone).toBe(200_000);
    expect(kernel.running()).toEqual(['vm']);
  });

  it('never lets a guest see its clock go backwards when the node clock steps back', async () => {
    const images = store();
    await images.putModule('clock', await wasmOf(CLOCK_GUEST));
    const clock = aClock(5_000_000);
    const kernel = aKernel(images, { clock });
    await kernel.start({ id: 'vm', fence: 1, guest: { kind: 'module:clock' }, memPages: 1 });
    runTicks(kernel, 3);
    const before = kernel.vtod('vm');
    clock.advance(-60_000);
    runTicks(kernel, 3);
    expect(kernel.vtod('vm')).toBeGreaterThanOrEqual(before);
    expect(kernel.digest('vm')).toBe('0000000000000000');
  });

  it('refuses bad launches with clear errors', async () => {
    const kernel = aKernel(store());
    await expect(
      kernel.start({ id: 'x', fence: 1, guest: { kind: 'quantum' }, memPages: 1 }),
    ).rejects.toThrow(new InvalidInput('unknown guest kind "quantum"'));
    await expect(
      kernel.start({ id: 'x', fence: 1, guest: { kind: 'cpu', params: { speed: 3 } }, memPages: 1 }),
    ).rejects.toThrow(InvalidInput);
    await expect(kernel.start({ id: 'x', fence: 1, guest: { kind: 'cpu' }, memPages: 0 })).rejects.toThrow(
      InvalidInput,
    );
    await expect(
      kernel.start({ id: 'x', fence: 1, guest: { kind: 'module:nope' }, memPages: 1 }),
    ).rejects.toThrow(NotFound);
    await kernel.start({ id: 'x', fence: 1, guest: { kind: 'idle' }, memPages: 1 });
    await expect(kernel.start({ id: 'x', fence: 1, guest: { kind: 'idle' }, memPages: 1 })).rejects.toThrow(
      Conflict,
    );
    expect(() => kernel.pause('nope')).toThrow(NotFound);
  });

  it('pauses a guest that traps and reports why, without disturbing the others', async () => {
    const images = store();
    await images.putModule(
      'crash',
      await wasmOf(`(module (memory (export "memory") 1)
        (func (export "run") (param i32) (result i32) unreachable)
        (func (export "digest") (result i64) (i64.const 0)))`),
    );
    const kernel = aKernel(images);
    await kernel.start({ id: 'bad', fence: 1, guest: { kind: 'module:crash' }, memPages: 1 });
    await kernel.start({ id: 'good', fence: 1, guest: cpu(UNITS_PER_CORE), memPages: 1 });
    runTicks(kernel, 2);
    const m = Object.fromEntries(kernel.measure().map((x) => [x.id, x]));
    expect(m.bad!.error).toMatch(/unreachable/);
    expect(m.good!.workDone).toBe((2 * UNITS_PER_CORE * TICK_MS) / 1000);
    expect(kernel.running()).toEqual(['good']);
    expect(() => kernel.resume('bad')).toThrow(Conflict);
  });

  it('refuses to run a registered module that breaks the ABI', async () => {
    const images = store();
    await images.putModule('norun', await wasmOf('(module (memory (export "memory") 1))'));
    const kernel = aKernel(images);
    await expect(
      kernel.start({ id: 'x', fence: 1, guest: { kind: 'module:norun' }, memPages: 1 }),
    ).rejects.toThrow(/breaks the guest ABI: missing export "run"/);
  });
});
