// The qemu driver against s3rver: checkpoints, suspend/resume and migration all go through QEMU's
// migration stream in the image store, and the counter guest goes on where it stopped, in another
// process of another "node" (driver), with nothing lost or repeated.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { detectAccel } from '../../node-agent/drivers/qemu/accel.ts';
import { expectedOutput, parseLine } from '../../node-agent/drivers/qemu/counter-image.ts';
import type { QemuDriver } from '../../node-agent/drivers/qemu/driver.ts';
import { QemuProcess } from '../../node-agent/drivers/qemu/process.ts';
import { readStateManifest } from '../../node-agent/drivers/qemu/state-store.ts';
import { Corrupt, InvalidInput } from '../../shared/storage/errors.ts';
import { type BlobStore, s3Blobs } from '../../shared/storage/image-store.ts';
import { freshStores } from '../support/stores.ts';
import { counterDigestFor, digestAt, QEMU, qemuNodes, waitLines } from './support.ts';

const guest = { kind: 'qemu:counter' };
const linesOf = (driver: QemuDriver, id: string) => driver.processOf(id).serial.sync().lines;

/** Starts `id`, lets it print `lines` lines, and saves it paused: the checkpoint. */
async function savedAfter(driver: QemuDriver, id: string, lines: number) {
  await driver.start({ id, fence: 1, guest, memPages: 256 });
  await waitLines(driver, id, lines);
  await driver.pause(id);
  return driver.checkpoint(id);
}

/** `savedAfter`, then stopped: the checkpoint and the line the guest stopped at. */
async function suspended(driver: QemuDriver, id: string, lines: number) {
  const saved = await savedAfter(driver, id, lines);
  const stoppedAt = linesOf(driver, id);
  await driver.stop(id);
  return { saved, stoppedAt };
}

/**
 * The first line `driver`'s process of `id` printed after it restored `image`: the line the guest
 * had begun when the image was saved (its serial state's `partial`, which a save may cut mid-line),
 * finished by the restored guest's first output.
 */
async function firstLineAfter(blobs: BlobStore, image: { manifest: string }, driver: QemuDriver, id: string) {
  const { serial } = await readStateManifest(blobs, image.manifest);
  return (serial.partial + driver.processOf(id).serial.tail).split('\n')[0]!;
}

/** `id` prints two lines past `at`, and its digest is one the counter's sequence gives. */
async function expectRunsOnFrom(driver: QemuDriver, id: string, at: number) {
  await waitLines(driver, id, at + 2);
  const digest = driver.digest(id);
  expect(digest).toBe(counterDigestFor(digest));
}

/** Gives up the migration of `id`, stopped for it: it runs again at the source, from where it stood. */
async function abortAndRunOn(driver: QemuDriver, id: string) {
  expect(driver.running()).toEqual([]);
  const at = linesOf(driver, id);
  await driver.abortMigration(id);
  expect(driver.running()).toEqual([id]);
  await expectRunsOnFrom(driver, id, at);
}

describe('the qemu driver with the image store on s3rver', () => {
  let blobs: BlobStore;
  const nodes = qemuNodes('driver');
  const aNode = (nodeId: string) => nodes(nodeId, { blobs });

  beforeAll(async () => {
    blobs = s3Blobs(await freshStores());
  });

  it('suspends to S3 and resumes on another node, the counter going on from where it stopped', async () => {
    const a = aNode('a');
    const b = aNode('b');
    const { saved, stoppedAt } = await suspended(a, 'vm-s', 5);
    expect(a.has('vm-s')).toBe(false);
    expect(saved.image).toMatchObject({ manifest: 'images/vm-s/1/1/manifest.json', seq: 1 });
    expect(saved.image.digest).toBe(digestAt(stoppedAt));
    expect(saved.migration.precopyBytes).toBe(0); // it was stopped: no pre-copy

    const manifest = await readStateManifest(blobs, saved.image.manifest);
    expect(manifest.parts.length).toBeGreaterThan(0);
    expect(manifest.bytes).toBe(saved.migration.bytes);
    expect(manifest.serial.lines).toBe(stoppedAt);

    await b.start({ id: 'vm-s', fence: 2, guest, memPages: 256, image: saved.image });
    await waitLines(b, 'vm-s', stoppedAt + 3);
    expect(b.processOf('vm-s').serial.tail.startsWith(expectedOutput(stoppedAt + 1, stoppedAt + 3))).toBe(
      true,
    );
    const bDigest = b.digest('vm-s');
    expect(bDigest).toBe(counterDigestFor(bDigest));
  });

  it('checkpoints a running VM live: it goes on running, and the checkpoint restores where it was taken', async () => {
    const a = aNode('a');
    const b = aNode('b');
    await a.start({ id: 'vm-c', fence: 1, guest, memPages: 256 });
    await waitLines(a, 'vm-c', 3);
    const saved = await a.checkpoint('vm-c');
    const manifest = await readStateManifest(blobs, saved.image.manifest);
    // the source was not stopped for good: it prints on past the checkpoint
    await waitLines(a, 'vm-c', manifest.serial.lines + 3);
    expect(a.running()).toEqual(['vm-c']);
    await b.start({ id: 'vm-c', fence: 2, guest, memPages: 256, image: saved.image });
    await waitLines(b, 'vm-c', manifest.serial.lines + 2);
    const first = await firstLineAfter(blobs, saved.image, b, 'vm-c');
    expect(parseLine(first)?.counter).toBe(manifest.serial.lines + 1);
  });

  it('migrates with QEMU pre-copy, three times between two nodes, and digests like a VM that never moved', async () => {
    const pair = [aNode('a'), aNode('b')];
    await pair[0]!.start({ id: 'vm-m', fence: 1, guest, memPages: 256 });
    let fence = 1;
    for (let move = 0; move < 3; move++) {
      const source = pair[move % 2]!;
      const target = pair[(move + 1) % 2]!;
      await waitLines(source, 'vm-m', 3 * (move + 1));
      const pre = await source.precopy('vm-m');
      expect(pre.bytes).toBeGreaterThan(0);
      const final = await source.finalState('vm-m');
      expect(final.migration.precopyBytes).toBe(pre.bytes);
      expect(final.migration.downtimeMs).toBeGreaterThanOrEqual(0);
      expect(final.migration.rounds).toBeGreaterThanOrEqual(1);
      const stoppedAt = linesOf(source, 'vm-m');
      await source.stop('vm-m');
      fence += 1;
      await target.start({ id: 'vm-m', fence, guest, memPages: 256, image: final.image, paused: true });
      expect(target.running()).toEqual([]);
      await target.resume('vm-m');
      await waitLines(target, 'vm-m', stoppedAt + 1);
      expect(parseLine(await firstLineAfter(blobs, final.image, target, 'vm-m'))?.counter).toBe(
        stoppedAt + 1,
      );
    }
    const last = pair[1]!;
    const digest = last.digest('vm-m');
    expect(digest).toBe(counterDigestFor(digest));
    const state = last.processOf('vm-m').serial.current;
    expect(parseLine(state.last)?.counter).toBe(state.lines);
  });

  it('gives up a migration after pre-copy, and the guest runs on at the source', async () => {
    const a = aNode('a');
    await a.start({ id: 'vm-x', fence: 1, guest, memPages: 256 });
    await waitLines(a, 'vm-x', 2);
    await a.precopy('vm-x');
    await abortAndRunOn(a, 'vm-x');
  });

  it('refuses a saved state with an altered part, and leaves no process behind', async () => {
    const a = aNode('a');
    const b = aNode('b');
    const saved = await savedAfter(a, 'vm-k', 1);
    const manifest = await readStateManifest(blobs, saved.image.manifest);
    const part = manifest.parts[0]!;
    const body = (await blobs.get(part.key))!.body;
    body[body.byteLength >> 1]! ^= 0xff;
    await blobs.delete(part.key);
    await blobs.put(part.key, body);
    await expect(b.start({ id: 'vm-k', fence: 2, guest, memPages: 256, image: saved.image })).rejects.toThrow(
      Corrupt,
    );
    expect(b.has('vm-k')).toBe(false);
  });

  it('ends a VM stopped before or while its QEMU is spawned: the start fails and leaves no process', async () => {
    // a node that fences itself (stop) before QEMU is up: a process coming up afterwards must not
    // stay on the node, paused or not
    const a = aNode('e');
    const early = a.start({ id: 'vm-e', fence: 1, guest, memPages: 256 });
    expect(a.has('vm-e')).toBe(true);
    await a.stop('vm-e');
    await expect(early).rejects.toThrow(/stopped on node e while it started/);
    expect(a.has('vm-e')).toBe(false);

    const spawn = QemuProcess.spawn.bind(QemuProcess);
    vi.spyOn(QemuProcess, 'spawn').mockImplementationOnce((options) => {
      void a.stop('vm-e'); // the fence lands while QEMU comes up
      return spawn(options);
    });
    await expect(a.start({ id: 'vm-e', fence: 2, guest, memPages: 256 })).rejects.toThrow(/while it started/);
    vi.restoreAllMocks();
    expect(a.has('vm-e')).toBe(false);
    expect(readdirSync(join(a.options.workDir, 'vms'))).toEqual([]); // its process was killed and removed

    await a.start({ id: 'vm-e', fence: 3, guest, memPages: 256 });
    await waitLines(a, 'vm-e', 1);
  });

  it('measures CPU from the process and memory from its resident set', async () => {
    const a = aNode('a');
    await a.start({ id: 'vm-l', fence: 1, guest, memPages: 256 });
    await waitLines(a, 'vm-l', 3);
    const [m] = await a.measure();
    expect(m!.id).toBe('vm-l');
    expect(m!.factors.cpu).toBeGreaterThanOrEqual(0);
    expect(m!.factors.mem).toBeGreaterThan(16 / 1024); // at least its 16 MiB of RAM, in GiB
    expect(m!.load).toBeCloseTo(m!.factors.cpu + m!.factors.io + m!.factors.mem, 9);
    expect(m!.digest).toMatch(/^serial:\d+:[0-9a-f]{32}$/);
  });

  it('refuses a guest that is not a qemu image, or an image it does not know', async () => {
    const a = aNode('a');
    await expect(a.start({ id: 'w', fence: 1, guest: { kind: 'cpu' }, memPages: 1 })).rejects.toThrow(
      InvalidInput,
    );
    await expect(a.start({ id: 'w', fence: 1, guest: { kind: 'qemu:nope' }, memPages: 1 })).rejects.toThrow(
      InvalidInput,
    );
    expect(a.has('w')).toBe(false);
  });
});

describe('choosing the accelerator', () => {
  it('uses TCG when /dev/kvm cannot be opened', async () => {
    expect(await detectAccel(QEMU, { device: '/nonexistent/kvm' })).toMatchObject({ accel: 'tcg' });
  });

  it('uses TCG when a guest does not run under KVM', async () => {
    // /dev/null opens read-write like /dev/kvm, but `false` never boots the test guest
    const out = await detectAccel('false', { device: '/dev/null' });
    expect(out.accel).toBe('tcg');
    expect(out.why).toMatch(/KVM did not run a test guest/);
  });
});

describe('the qemu driver when the image store fails', () => {
  let blobs: BlobStore;
  /** The store, with puts of stream parts failing after `okParts` of them while `failing` is set. */
  const flaky = { failing: false, okParts: 0, partsPut: 0, failGets: false };
  const nodes = qemuNodes('store-faults');
  const aNode = (nodeId: string) => {
    const store: BlobStore = {
      ...blobs,
      async put(key, body, metadata) {
        if (/qemu-\d+\.bin$/.test(key) && flaky.failing && flaky.partsPut++ >= flaky.okParts)
          throw new Error('S3 is down');
        return blobs.put(key, body, metadata);
      },
      async get(key) {
        if (/qemu-[1-9]\d*\.bin$/.test(key) && flaky.failGets) throw new Error('S3 is down');
        return blobs.get(key);
      },
    };
    // many parts, uploaded while QEMU streams
    return nodes(nodeId, { blobs: store, statePartBytes: 64 * 1024 });
  };

  beforeAll(async () => {
    blobs = s3Blobs(await freshStores());
  });
  afterEach(() => {
    Object.assign(flaky, { failing: false, okParts: 0, partsPut: 0, failGets: false });
  });

  it('fails a checkpoint whose upload breaks mid-stream: no state becomes visible and the guest runs on', async () => {
    const a = aNode('a');
    await a.start({ id: 'vm-u', fence: 1, guest, memPages: 256 });
    await waitLines(a, 'vm-u', 2);
    Object.assign(flaky, { failing: true, okParts: 3 });
    await expect(a.checkpoint('vm-u')).rejects.toThrow(/S3 is down/);
    expect(flaky.partsPut).toBeGreaterThan(3);
    expect(await blobs.list('images/vm-u/')).not.toContain('images/vm-u/1/1/manifest.json');
    await expectRunsOnFrom(a, 'vm-u', linesOf(a, 'vm-u'));
    // the store is back: the next save works, under a new sequence (keys are written once)
    flaky.failing = false;
    const saved = await a.checkpoint('vm-u');
    expect(saved.image.seq).toBe(2);
    expect((await readStateManifest(blobs, saved.image.manifest)).parts.length).toBeGreaterThan(3);
  });

  it('keeps a migrating guest on its source when the final upload fails, and runs it again on abort', async () => {
    const a = aNode('a');
    await a.start({ id: 'vm-f', fence: 1, guest, memPages: 256 });
    await waitLines(a, 'vm-f', 2);
    await a.precopy('vm-f');
    Object.assign(flaky, { failing: true, okParts: 0 });
    await expect(a.finalState('vm-f')).rejects.toThrow();
    await abortAndRunOn(a, 'vm-f');
  });

  it('fails a load whose parts cannot be read, leaves no process, and loads on a retry', async () => {
    const a = aNode('a');
    const b = aNode('b');
    const { saved, stoppedAt } = await suspended(a, 'vm-r', 2);
    flaky.failGets = true;
    await expect(b.start({ id: 'vm-r', fence: 2, guest, memPages: 256, image: saved.image })).rejects.toThrow(
      /S3 is down/,
    );
    expect(b.has('vm-r')).toBe(false);
    flaky.failGets = false;
    await b.start({ id: 'vm-r', fence: 2, guest, memPages: 256, image: saved.image });
    await waitLines(b, 'vm-r', stoppedAt + 1);
    expect(parseLine(await firstLineAfter(blobs, saved.image, b, 'vm-r'))?.counter).toBe(stoppedAt + 1);
  });
});
