// A user image end to end: the counter guest's floppy registered as a raw image through the API
// (bytes to s3rver, record to dynalite), booted by the qemu driver from its own checksum-verified
// cache as a read-only virtio disk, and migrated to another node that fetches the same disk: the
// stream carries no disk, and the counter goes on.
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { counterFloppy, parseLine } from '../../node-agent/drivers/qemu/counter-image.ts';
import type { QemuDriver } from '../../node-agent/drivers/qemu/driver.ts';
import { Corrupt } from '../../shared/storage/errors.ts';
import { type BlobStore, s3Blobs, sha256 } from '../../shared/storage/image-store.ts';
import { anApi, type TestApi } from '../api/support.ts';
import { qemuNodes } from './drivers.ts';

const WAIT = 15_000;
const HZ = 100;

describe('a registered raw image on the qemu driver', () => {
  let api: TestApi;
  let blobs: BlobStore;
  const { aNode, workDir } = qemuNodes('seesaw-qemu-registered-', () => blobs);
  const waitLines = (driver: QemuDriver, id: string, n: number) =>
    driver.processOf(id).serial.wait((s) => s.lines >= n, WAIT);
  const cacheOf = (nodeId: string) => join(workDir(nodeId), 'images', 'registered');

  beforeAll(async () => {
    api = await anApi();
    blobs = s3Blobs(api.clients);
    const disk = Buffer.from(counterFloppy(HZ)).toString('base64');
    const res = await api.call('POST', '/v1/images', { body: { name: 'my-counter', format: 'raw', disk } });
    expect(res.status).toBe(201);
  });

  it('boots from the cached disk, read-only, and migrates to a node that fetches the same disk', async () => {
    const a = aNode('a');
    const b = aNode('b');
    const guest = { kind: 'qemu:my-counter' };
    await a.start({ id: 'vm-u', fence: 1, guest, memPages: 256 });
    await waitLines(a, 'vm-u', 3);
    expect(parseLine(a.processOf('vm-u').serial.tail.split('\n')[0]!)?.counter).toBe(1);
    expect(a.processOf('vm-u').options).toMatchObject({ disk: { format: 'raw', readonly: true } });
    expect(a.processOf('vm-u').options.floppy).toBeUndefined();
    const [cached] = readdirSync(cacheOf('a'));
    expect(cached).toMatch(/^[0-9a-f]{64}\.disk$/);
    expect(statSync(join(cacheOf('a'), cached!)).mode & 0o222).toBe(0);

    await a.precopy('vm-u');
    const final = await a.finalState('vm-u');
    const stoppedAt = a.processOf('vm-u').serial.sync().lines;
    await a.stop('vm-u');
    await b.start({ id: 'vm-u', fence: 2, guest, memPages: 256, image: final.image });
    await waitLines(b, 'vm-u', stoppedAt + 2);
    expect(parseLine(b.processOf('vm-u').serial.tail.split('\n')[0]!)?.counter).toBe(stoppedAt + 1);
    expect(readdirSync(cacheOf('b'))).toEqual([cached]);
  });

  it('fetches again a cached disk that no longer matches its sha256', async () => {
    const a = aNode('c');
    await a.start({ id: 'vm-v', fence: 1, guest: { kind: 'qemu:my-counter' }, memPages: 256 });
    await a.stop('vm-v');
    const [cached] = readdirSync(cacheOf('c'));
    const path = join(cacheOf('c'), cached!);
    rmSync(path);
    writeFileSync(path, counterFloppy(HZ + 1)); // same size, other bytes
    await a.start({ id: 'vm-v', fence: 2, guest: { kind: 'qemu:my-counter' }, memPages: 256 });
    await waitLines(a, 'vm-v', 2);
    expect(sha256(readFileSync(path))).toBe(cached!.split('.')[0]);
    expect(readdirSync(cacheOf('c'))).toEqual([cached]);
  });

  it('refuses to boot a disk whose object in the store fails its sha256, and leaves no process', async () => {
    const disk = Buffer.from(counterFloppy(60)).toString('base64');
    const res = await api.call('POST', '/v1/images', { body: { name: 'tampered', format: 'raw', disk } });
    const { files } = await res.json();
    await blobs.delete(files[0].key);
    await blobs.put(files[0].key, counterFloppy(61), { sha256: files[0].sha256 });
    const a = aNode('d');
    await expect(
      a.start({ id: 'vm-t', fence: 1, guest: { kind: 'qemu:tampered' }, memPages: 256 }),
    ).rejects.toThrow(Corrupt);
    expect(a.has('vm-t')).toBe(false);
    expect(existsSync(cacheOf('d')) ? readdirSync(cacheOf('d')) : []).toEqual([]);
  });
});
