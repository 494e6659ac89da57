// Qemu images through the API: registration of raw, qcow2 and kernel images with their content
// checks (problem+json, nothing changed on bad input), idempotent re-registration, list, show and
// delete (refused while a VM uses the image), and `qemu:<image>` launches placed on qemu nodes only.
import { beforeEach, describe, expect, it } from 'vitest';
import { counterFloppy } from '../../node-agent/drivers/qemu/counter-image.ts';
import { registerNode } from '../../shared/storage/nodes.ts';
import { aNode, anApi, NOW, PROBLEM, type TestApi } from './support.ts';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/** A qcow2 header of the given version with `patch` applied (offset → big-endian u32/u64). */
function qcow2(version = 3, patch: (view: DataView) => void = () => {}): Uint8Array {
  const bytes = new Uint8Array(65_536 * 3);
  const view = new DataView(bytes.buffer);
  bytes.set([0x51, 0x46, 0x49, 0xfb]);
  view.setUint32(4, version);
  view.setUint32(20, 16); // 64 KiB clusters
  view.setBigUint64(24, 1n << 30n); // 1 GiB virtual
  if (version === 3) view.setUint32(100, 104);
  patch(view);
  return bytes;
}

/** The start of a Linux bzImage: the boot signature and the HdrS setup header. */
function bzImage(): Uint8Array {
  const bytes = new Uint8Array(4096);
  bytes[0x1fe] = 0x55;
  bytes[0x1ff] = 0xaa;
  bytes.set([0x48, 0x64, 0x72, 0x53], 0x202);
  return bytes;
}

/** A live node that offers the qemu driver (the label its agent sets). */
async function aQemuNode(api: TestApi, id: string) {
  await registerNode(api.clients, {
    spec: {
      id,
      capacity: 4,
      weights: { cpu: 1, io: 0.5, mem: 0.25 },
      memCapacityPages: 8192,
      labels: { qemu: 'tcg' },
    },
    incarnation: `inc-${id}`,
    now: NOW,
    leaseMs: 10_000,
  });
}

describe('qemu images', () => {
  let api: TestApi;
  beforeEach(async () => {
    api = await anApi();
  });

  const post = (body: unknown) => api.call('POST', '/v1/images', { body });

  /** Sends a bad registration: a problem of `status`, and not one item of the table changed. */
  async function refused(body: unknown, status: number, detail: RegExp) {
    const before = await api.snapshot();
    const res = await post(body);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toContain(PROBLEM);
    expect((await res.json()).detail).toMatch(detail);
    expect(await api.snapshot()).toEqual(before);
  }

  it('registers a raw disk, lists and shows it, and accepts the same bytes again with 200', async () => {
    const disk = counterFloppy(50);
    const res = await post({ name: 'counter-raw', format: 'raw', disk: b64(disk) });
    expect(res.status).toBe(201);
    const image = await res.json();
    expect(image).toMatchObject({
      name: 'counter-raw',
      format: 'raw',
      bytes: disk.byteLength,
      virtualBytes: disk.byteLength,
      cmdline: null,
    });
    expect(image.files).toEqual([
      expect.objectContaining({
        role: 'disk',
        bytes: disk.byteLength,
        key: expect.stringMatching(/^user-images\/counter-raw\//),
      }),
    ]);
    const again = await post({ name: 'counter-raw', format: 'raw', disk: b64(disk) });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(image);
    expect((await (await api.call('GET', '/v1/images')).json()).items).toEqual([image]);
    expect(await (await api.call('GET', '/v1/images/counter-raw')).json()).toEqual(image);
  });

  it('registers a qcow2 disk with its virtual size, and a kernel with initrd and command line', async () => {
    const q = await post({ name: 'q', format: 'qcow2', disk: b64(qcow2()) });
    expect(q.status).toBe(201);
    expect((await q.json()).virtualBytes).toBe(2 ** 30);
    const k = await post({
      name: 'linux',
      format: 'kernel',
      kernel: b64(bzImage()),
      initrd: b64(new Uint8Array([1, 2, 3])),
      cmdline: 'console=ttyS0 quiet',
    });
    expect(k.status).toBe(201);
    const kernel = await k.json();
    expect(kernel.cmdline).toBe('console=ttyS0 quiet');
    expect(kernel.files.map((f: { role: string }) => f.role).sort()).toEqual(['initrd', 'kernel']);
  });

  it('refuses other bytes under a registered name, and the built-in name, with 409', async () => {
    expect((await post({ name: 'img', format: 'raw', disk: b64(counterFloppy(50)) })).status).toBe(201);
    await refused({ name: 'img', format: 'raw', disk: b64(counterFloppy(60)) }, 409, /already registered/);
    await refused({ name: 'counter', format: 'raw', disk: b64(counterFloppy(50)) }, 409, /built in/);
  });

  it('refuses bad names and malformed bodies with 400', async () => {
    await refused({ name: '-bad', format: 'raw', disk: b64(counterFloppy(50)) }, 400, /name/);
    await refused({ name: 'ok', format: 'vmdk', disk: 'AAAA' }, 400, /format/);
    await refused({ name: 'ok', format: 'raw', disk: 'not base64!' }, 400, /disk/);
    await refused({ name: 'ok', format: 'raw', kernel: b64(bzImage()) }, 400, /./);
  });

  it('refuses bytes QEMU could not boot, or that point at files on the node, with 422', async () => {
    const noSignature = new Uint8Array(1024);
    await refused({ name: 'a', format: 'raw', disk: b64(noSignature) }, 422, /boot sector/);
    const ragged = counterFloppy(50).subarray(0, 1000);
    await refused({ name: 'a', format: 'raw', disk: b64(ragged) }, 422, /whole 512-byte sectors/);
    await refused({ name: 'a', format: 'qcow2', disk: b64(counterFloppy(50)) }, 422, /QFI/);
    await refused(
      { name: 'a', format: 'qcow2', disk: b64(qcow2(3, (v) => v.setBigUint64(8, 512n))) },
      422,
      /backing file/,
    );
    await refused(
      { name: 'a', format: 'qcow2', disk: b64(qcow2(3, (v) => v.setBigUint64(72, 4n))) },
      422,
      /external data file/,
    );
    await refused({ name: 'a', format: 'qcow2', disk: b64(qcow2(4)) }, 422, /version 4/);
    await refused({ name: 'a', format: 'kernel', kernel: b64(new Uint8Array(4096)) }, 422, /bzImage/);
    await refused(
      { name: 'a', format: 'kernel', kernel: b64(bzImage()), cmdline: 'console=ttyS0\nrm' },
      422,
      /printable/,
    );
  });

  it('refuses an image over the size limit with 422 and changes nothing', async () => {
    const big = new Uint8Array(12_000_256);
    big[510] = 0x55;
    big[511] = 0xaa;
    await refused({ name: 'big', format: 'raw', disk: b64(big) }, 422, /at most 12000000/);
  });

  it('answers 404 for an unknown image on show and delete', async () => {
    for (const method of ['GET', 'DELETE']) {
      const res = await api.call(method, '/v1/images/nope');
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain(PROBLEM);
    }
  });

  it('deletes an unused image, and refuses with 409 while a VM uses it', async () => {
    await aQemuNode(api, 'q1');
    expect((await post({ name: 'img', format: 'raw', disk: b64(counterFloppy(50)) })).status).toBe(201);
    const vm = await (await api.call('POST', '/v1/vms', { body: { guest: 'qemu:img' } })).json();
    const before = await api.snapshot();
    const inUse = await api.call('DELETE', '/v1/images/img');
    expect(inUse.status).toBe(409);
    expect((await inUse.json()).detail).toContain(vm.id);
    expect(await api.snapshot()).toEqual(before);

    expect((await post({ name: 'spare', format: 'raw', disk: b64(counterFloppy(60)) })).status).toBe(201);
    expect((await api.call('DELETE', '/v1/images/spare')).status).toBe(204);
    expect((await api.call('GET', '/v1/images/spare')).status).toBe(404);
    expect(
      (await (await api.call('GET', '/v1/images')).json()).items.map((i: { name: string }) => i.name),
    ).toEqual(['img']);
  });
});

describe('qemu:<image> launches', () => {
  let api: TestApi;
  beforeEach(async () => {
    api = await anApi();
    await aNode(api.clients, 'w1', { load: 0 });
    await aQemuNode(api, 'q1');
  });

  const launch = (body: unknown) => api.call('POST', '/v1/vms', { body });

  it('places a qemu:counter VM on the qemu node, even though the wasm node is as idle', async () => {
    const res = await launch({ guest: 'qemu:counter', params: { hz: 100 } });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      owner: 'q1',
      guest: { kind: 'qemu:counter', params: { hz: 100 } },
      memPages: 256,
    });
  });

  it('launches a registered image', async () => {
    await api.call('POST', '/v1/images', {
      body: { name: 'mine', format: 'raw', disk: b64(counterFloppy(50)) },
    });
    const res = await launch({ guest: 'qemu:mine', memPages: 512 });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ owner: 'q1', memPages: 512 });
  });

  it('refuses an unknown image (404), bad params or memory (422), a bad name (400), a wasm node (422)', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ guest: 'qemu:nope' }, 404, /image nope/],
      [{ guest: 'qemu:counter', params: { hz: 5 } }, 422, /hz/],
      [{ guest: 'qemu:counter', params: { diskMiB: 4 } }, 422, /diskMiB/],
      [{ guest: 'qemu:counter', memPages: 16 }, 422, /at least 256/],
      [{ guest: 'qemu:../etc' }, 400, /guest/],
      [{ guest: 'qemu:counter', node: 'w1' }, 422, /does not offer the qemu driver/],
    ];
    for (const [body, status, detail] of cases) {
      const before = await api.snapshot();
      const res = await launch(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.headers.get('content-type')).toContain(PROBLEM);
      expect((await res.json()).detail).toMatch(detail);
      expect(await api.snapshot()).toEqual(before);
    }
  });

  it('refuses with 409 when no live node offers qemu, as for any VM no node can take', async () => {
    const only = await anApi();
    await aNode(only.clients, 'w1', { load: 0 });
    const before = await only.snapshot();
    const res = await only.call('POST', '/v1/vms', { body: { guest: 'qemu:counter' } });
    expect(res.status).toBe(409);
    expect((await res.json()).detail).toMatch(/does not offer the qemu driver/);
    expect(await only.snapshot()).toEqual(before);
  });
});
