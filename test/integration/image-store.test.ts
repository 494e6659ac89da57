import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { Conflict, Corrupt, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import {
  createImageStoreOn,
  type ImageStore,
  type ImageWrite,
  s3Blobs,
} from '../../shared/storage/image-store.ts';
import { freshImageStores } from '../support/stores.ts';

const page = (fill: number) => new Uint8Array(PAGE_BYTES).fill(fill);
/** Pages (or disk blocks) by index, each filled with one byte. */
const pagesOf = (fills: Record<number, number>) =>
  new Map(Object.entries(fills).map(([index, fill]): [number, Uint8Array] => [Number(index), page(fill)]));

function anImage(overrides: Partial<ImageWrite> & Pick<ImageWrite, 'vm' | 'seq'>): ImageWrite {
  return {
    fence: 1,
    kind: 'full',
    guest: { kind: 'cpu' },
    memPages: 8,
    pages: new Map(),
    disk: { bytes: 1 << 20, blocks: new Map() },
    globals: { x: '42', rate: 'f:412e848000000000' },
    vtod: 1000,
    vtodOffset: 0,
    digest: 'abc',
    createdAt: 1000,
    ...overrides,
  };
}

describe('the S3 image store against s3rver', () => {
  let clients: Clients;
  let images: ImageStore;
  beforeAll(async () => {
    ({ clients, images } = await freshImageStores());
  });

  const keys = async (prefix: string) =>
    (
      (await clients.s3.send(new ListObjectsV2Command({ Bucket: clients.bucketName, Prefix: prefix })))
        .Contents ?? []
    )
      .map((o) => o.Key!)
      .sort();

  it('writes a full image and a delta that holds only changed pages (inline, one object), and reads back the whole state', async () => {
    const full = await images.putImage(
      anImage({
        vm: 'vm1',
        seq: 1,
        pages: pagesOf({ 0: 1, 3: 3 }),
        disk: { bytes: 1 << 20, blocks: pagesOf({ 2: 9 }) },
      }),
    );
    const delta = await images.putImage(
      anImage({
        vm: 'vm1',
        seq: 2,
        fence: 2,
        kind: 'delta',
        previous: full.manifest,
        pages: pagesOf({ 3: 4 }),
      }),
    );
    expect(full.ref.manifest).toBe('images/vm1/1/1/manifest.json');
    expect(delta.ref).toEqual({
      manifest: 'images/vm1/2/2/manifest.json',
      seq: 2,
      digest: 'abc',
      vtod: 1000,
    });
    expect(delta.bytes).toBeLessThan(full.bytes);
    expect(delta.manifest).toMatchObject({
      kind: 'delta',
      base: full.ref.manifest,
      parent: full.ref.manifest,
    });
    const loaded = await images.getImage(delta.ref.manifest);
    expect([...loaded.pages.keys()]).toEqual([0, 3]);
    expect(loaded.pages.get(0)![0]).toBe(1);
    expect(loaded.pages.get(3)![0]).toBe(4);
    expect(loaded.disk.get(2)![100]).toBe(9);
    expect(loaded.manifest.globals).toEqual({ x: '42', rate: 'f:412e848000000000' });
    expect(await keys('images/vm1/')).toEqual([
      'images/vm1/1/1/manifest.json',
      'images/vm1/1/1/pack-0.bin',
      'images/vm1/2/2/manifest.json',
    ]);
    expect(delta.manifest.packs).toContain(delta.ref.manifest);
  });

  it('reads only the picked blocks of an image, from the packs they lie in', async () => {
    const full = await images.putImage(anImage({ vm: 'pick', seq: 1, pages: pagesOf({ 1: 1, 2: 2 }) }));
    const delta = await images.putImage(
      anImage({ vm: 'pick', seq: 2, kind: 'delta', previous: full.manifest, pages: pagesOf({ 2: 5 }) }),
    );
    const read: string[] = [];
    const store = createImageStoreOn({
      ...s3Blobs(clients),
      get: (k) => {
        read.push(k);
        return s3Blobs(clients).get(k);
      },
    });
    const loaded = await store.getImage(delta.ref.manifest, () => ({ pages: new Set([2]), disk: new Set() }));
    expect([...loaded.pages.keys()]).toEqual([2]);
    expect(loaded.pages.get(2)![0]).toBe(5);
    expect(read).toEqual([delta.ref.manifest]);
    const old = await store.getImage(delta.ref.manifest, () => ({ pages: new Set([1]), disk: new Set() }));
    expect(old.pages.get(1)![0]).toBe(1);
    expect(read.slice(1)).toEqual([delta.ref.manifest, 'images/pick/1/1/pack-0.bin']);
  });

  it('detects a corrupted block carried inline in a delta manifest, naming the page', async () => {
    const full = await images.putImage(anImage({ vm: 'inl', seq: 1, pages: pagesOf({ 0: 1 }) }));
    const delta = await images.putImage(
      anImage({ vm: 'inl', seq: 2, kind: 'delta', previous: full.manifest, pages: pagesOf({ 4: 4 }) }),
    );
    const key = delta.ref.manifest;
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: clients.bucketName, Key: key }));
    const bytes = await object.Body!.transformToByteArray();
    bytes[bytes.byteLength - 10] = bytes[bytes.byteLength - 10]! ^ 0xff;
    await clients.s3.send(new PutObjectCommand({ Bucket: clients.bucketName, Key: key, Body: bytes }));
    await expect(images.getImage(key)).rejects.toThrow(
      new Corrupt(`image ${key}: page 4 in ${key} fails its sha256 check`),
    );
    // The full image's blocks are still read from their own pack, intact.
    const first = await images.getImage(key, () => ({ pages: new Set([0]), disk: new Set() }));
    expect(first.pages.get(0)![0]).toBe(1);
  });

  it('detects a corrupted page block as Corrupt, naming the page', async () => {
    const { ref } = await images.putImage(anImage({ vm: 'vm2', seq: 1, pages: pagesOf({ 5: 5 }) }));
    const packKey = 'images/vm2/1/1/pack-0.bin';
    const object = await clients.s3.send(new GetObjectCommand({ Bucket: clients.bucketName, Key: packKey }));
    const bytes = await object.Body!.transformToByteArray();
    bytes[1234] = bytes[1234]! ^ 0xff;
    await clients.s3.send(new PutObjectCommand({ Bucket: clients.bucketName, Key: packKey, Body: bytes }));
    await expect(images.getImage(ref.manifest)).rejects.toThrow(
      new Corrupt(`image ${ref.manifest}: page 5 in ${packKey} fails its sha256 check`),
    );
  });

  it('detects a missing pack, a missing manifest and a tampered manifest', async () => {
    const { ref } = await images.putImage(anImage({ vm: 'vm3', seq: 1, pages: pagesOf({ 0: 7 }) }));
    await expect(images.getImage('images/vm3/1/9/manifest.json')).rejects.toThrow(Corrupt);
    const manifest = JSON.parse(
      await (
        await clients.s3.send(new GetObjectCommand({ Bucket: clients.bucketName, Key: ref.manifest }))
      ).Body!.transformToString(),
    );
    manifest.vtod = 5;
    await clients.s3.send(
      new PutObjectCommand({ Bucket: clients.bucketName, Key: ref.manifest, Body: JSON.stringify(manifest) }),
    );
    await expect(images.getImage(ref.manifest)).rejects.toThrow(/fails its sha256 check/);
    const second = await images.putImage(anImage({ vm: 'vm3', seq: 2, pages: pagesOf({ 0: 8 }) }));
    await images.deleteVmImages('vm3');
    await expect(images.getImage(second.ref.manifest)).rejects.toThrow(Corrupt);
  });

  it('deletes every object of one VM and nothing of another', async () => {
    await images.putImage(anImage({ vm: 'gone', seq: 1, pages: pagesOf({ 0: 1 }) }));
    await images.putImage(anImage({ vm: 'gone', seq: 2, fence: 3, pages: pagesOf({ 0: 2 }) }));
    await images.putImage(anImage({ vm: 'gone2', seq: 1, pages: pagesOf({ 0: 3 }) }));
    expect(await images.deleteVmImages('gone')).toBe(4);
    expect(await keys('images/gone/')).toEqual([]);
    expect(await keys('images/gone2/')).toHaveLength(2);
  });

  it('stores registered modules by name and verifies them on read', async () => {
    const bytes = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    const put = await images.putModule('hello', bytes);
    expect(put).toMatchObject({ key: 'modules/hello.wasm', bytes: 8 });
    expect(await images.getModule('hello')).toEqual(bytes);
    await expect(images.getModule('absent')).rejects.toThrow(NotFound);
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: clients.bucketName,
        Key: 'modules/hello.wasm',
        Body: new Uint8Array([1, 2, 3]),
        Metadata: { sha256: put.sha256 },
      }),
    );
    await expect(images.getModule('hello')).rejects.toThrow(Corrupt);
  });

  it('refuses ids that would escape their key prefix', async () => {
    await expect(images.putImage(anImage({ vm: '../other', seq: 1 }))).rejects.toThrow(InvalidInput);
    await expect(images.putModule('a/b', new Uint8Array(1))).rejects.toThrow(InvalidInput);
  });

  it('writes every object with If-None-Match: *, and s3rver (unlike S3) does not enforce it on PUT', async () => {
    const sent: { IfNoneMatch?: string }[] = [];
    const send = clients.s3.send.bind(clients.s3);
    clients.s3.send = ((command: { input: { IfNoneMatch?: string } }) => {
      if (command instanceof PutObjectCommand) sent.push(command.input);
      return send(command as never);
    }) as never;
    try {
      await images.putModule('write-once', new Uint8Array([1, 2, 3]));
      // A second write of the same key: S3 answers 412 (Conflict here); s3rver stores it anyway.
      await images.putModule('write-once', new Uint8Array([4, 5, 6]));
    } finally {
      clients.s3.send = send as never;
    }
    expect(sent.length).toBe(2);
    for (const input of sent) expect(input.IfNoneMatch).toBe('*');
    expect([...(await images.getModule('write-once'))]).toEqual([4, 5, 6]);
  });

  it('turns a 412 from a store that honours If-None-Match into Conflict', async () => {
    const send = clients.s3.send.bind(clients.s3);
    clients.s3.send = ((command: unknown) => {
      if (command instanceof PutObjectCommand)
        return Promise.reject(
          Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
            name: 'PreconditionFailed',
            $metadata: { httpStatusCode: 412 },
          }),
        );
      return send(command as never);
    }) as never;
    try {
      await expect(images.putModule('taken', new Uint8Array([1]))).rejects.toThrow(Conflict);
    } finally {
      clients.s3.send = send as never;
    }
  });
});
