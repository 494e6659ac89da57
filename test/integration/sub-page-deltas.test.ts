// Sub-page deltas (image format seesaw-image/3) and coded blocks (/4) against s3rver and dynalite:
// the image store writes and reads deltas and coded pages, a live migration between two agents
// sends its final delta as the lines the guest rewrote, coded, and the target applies it to its
// paused copy, and a VM whose images no node can read (an unknown format or coding, a
// decompression bomb) ends FAILED with the reason, without taking its node down.
import zlib from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { createImageStore, type ImageManifest, sha256 } from '../../shared/storage/image-store.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { encodeXorDelta } from '../../shared/storage/page-delta.ts';
import { getVm, restartElsewhere } from '../../shared/storage/vms.ts';
import { AGENT_TIMINGS, agentRig, pollUntil, quiet } from '../support/agents.ts';
import { orderMove } from '../support/orders.ts';

// 8 pages of 1,024 lines in 24 resident pages; 2,000 lines a second: a few lines a page per period.
const GUEST = { kind: 'memory', params: { wsPages: 8, rate: 2_000, residentPages: 24 } };

describe('sub-page deltas on the local stack', () => {
  const rig = agentRig(7_000_000);
  const arrivals = new Map<string, string | undefined>();
  const log = {
    ...quiet,
    info: (obj: object, msg?: string) => {
      const o = obj as { vm: string; phases?: { path?: string } };
      if (msg === 'migrated in') arrivals.set(o.vm, o.phases?.path);
    },
  };
  const until = <T>(probe: () => Promise<T | undefined>, ms = 8000) => pollUntil(probe, ms);

  it('writes a delta image to S3 and reads it back whole, or only its delta onto a held base', async () => {
    const store = createImageStore(rig.clients);
    const base = new Uint8Array(PAGE_BYTES).fill(3);
    const page = new Uint8Array(base);
    page.set(new Uint8Array(64).fill(9), 640);
    const common = {
      vm: 'sp-store',
      fence: 1,
      guest: { kind: 'memory' },
      memPages: 2,
      disk: { bytes: 0, blocks: new Map() },
      globals: {},
      vtod: 0,
      vtodOffset: 0,
      digest: 'd',
      createdAt: 0,
    };
    const full = await store.putImage({ ...common, seq: 1, kind: 'full', pages: new Map([[1, base]]) });
    const delta = encodeXorDelta(base, page)!;
    const next = await store.putImage({
      ...common,
      seq: 2,
      kind: 'delta',
      previous: full.manifest,
      pages: new Map(),
      deltas: new Map([[1, { delta, sha256: sha256(page) }]]),
    });
    expect(next.manifest.format).toBe('seesaw-image/3');
    expect(next.bytes).toBeLessThan(1024 + 100 + delta.byteLength + 200);
    expect((await store.getImage(next.ref.manifest)).pages.get(1)).toEqual(page);
    const onto = await store.getImage(next.ref.manifest, () => ({
      pages: new Set([1]),
      disk: new Set(),
      base: () => new Uint8Array(base),
    }));
    expect(onto.pages.get(1)).toEqual(page);
    expect(onto.bytes).toBe(delta.byteLength);
  });

  it('migrates a guest that rewrites a few lines with a final delta of those lines, applied to the target copy', async () => {
    const [a, b] = [rig.anAgent('sp1', { log }), rig.anAgent('sp2', { log })];
    const before = await rig.runVm([a, b], { id: 'sp', guest: GUEST, memPages: 24 }, 6);
    await orderMove(rig.clients, {
      vm: 'sp',
      fence: before.fence,
      from: 'sp1',
      to: 'sp2',
      now: rig.now,
      memPages: 24,
      timings: AGENT_TIMINGS,
    });
    await rig.cycle([a, b], 1);
    const moved = await until(async () => {
      const vm = await getVm(rig.clients, 'sp');
      return vm.owner === 'sp2' &&
        vm.state === 'RUNNING' &&
        !vm.migration &&
        b.kernel.running().includes('sp')
        ? vm
        : undefined;
    });
    expect(moved.fence).toBe(before.fence + 1);
    expect(await until(async () => arrivals.get('sp'))).toBe('apply');
    expect(b.kernel.digest('sp')).toBe(moved.image?.digest);
    const final = (await rig.images.getImage(moved.image!.manifest)).manifest;
    expect(final.format).toBe('seesaw-image/4');
    expect(final.pages.filter((e) => e.length === 7 && e[5] !== null).length).toBeGreaterThan(0);
    const record = await until(() => getMigration(rig.clients, 'sp-m'));
    expect(record.outcome).toBe('completed');
    // The guest rewrote a few lines of its 8 working-set pages: far less than the pages whole.
    expect(record.bytes!.final).toBeGreaterThan(0);
    expect(record.bytes!.final).toBeLessThan(2 * PAGE_BYTES);
    // and the VM runs on from there on the target
    await rig.cycle([a, b], 3);
    expect((await getVm(rig.clients, 'sp')).digest).not.toBe(moved.image?.digest);
  });

  /** Rewrites every stored manifest of a VM in s3rver (which ignores If-None-Match) with `format`. */
  const rewriteFormats = (vm: string, format: string) =>
    rewriteManifests(vm, (m) => {
      m.format = format as never;
    });

  /** Rewrites every stored manifest of a VM in s3rver, re-checksummed, as `change` leaves it. */
  async function rewriteManifests(vm: string, change: (m: ImageManifest) => void) {
    const store = createImageStore(rig.clients);
    for (const { manifest: key } of await store.listImages(vm)) {
      const out = await rig.clients.s3.send(
        new GetObjectCommand({
          Bucket: rig.clients.bucketName,
          Key: key,
        }),
      );
      const body = Buffer.from(await out.Body!.transformToByteArray());
      const end = body.indexOf(0x0a);
      const m = JSON.parse(body.subarray(0, end < 0 ? body.length : end).toString('utf8')) as ImageManifest;
      change(m);
      const { checksum: _, ...rest } = m;
      const json = Buffer.from(
        JSON.stringify({ ...rest, checksum: sha256(Buffer.from(JSON.stringify(rest))) }),
      );
      const tail = end < 0 ? Buffer.alloc(0) : body.subarray(end);
      await rig.clients.s3.send(
        new PutObjectCommand({ Bucket: rig.clients.bucketName, Key: key, Body: Buffer.concat([json, tail]) }),
      );
    }
  }

  it('fails a VM whose images are all of a format no node can read, with the reason, and keeps its node running', async () => {
    const [a, c] = [rig.anAgent('sp3', { log }), rig.anAgent('sp4', { log })];
    const ran = await rig.runVm([a, c], { id: 'sp-bad', guest: GUEST, memPages: 24 }, 6);
    expect(ran.image).toBeDefined();
    const other = await rig.runVm([a], { id: 'sp-ok', guest: GUEST, memPages: 24 }, 1);
    expect(other.state).toBe('RUNNING');
    await rewriteFormats('sp-bad', 'seesaw-image/99');
    // The owner is gone (its lease would lapse); the VM restarts on the other node from its images.
    await restartElsewhere(rig.clients, {
      id: 'sp-bad',
      deadNode: 'sp3',
      fence: ran.fence,
      node: 'sp4',
      now: rig.now,
      seen: 'RUNNING',
    });
    const failed = await until(async () => {
      await rig.cycle([c], 1);
      const vm = await getVm(rig.clients, 'sp-bad');
      return vm.state === 'FAILED' ? vm : undefined;
    });
    expect(failed.reason).toMatch(/no usable image: .*format seesaw-image\/99, which this node cannot read/);
    expect(c.kernel.has('sp-bad')).toBe(false);
    // the node itself carries on: it still reports, and the other VM on its neighbour still runs
    await rig.cycle([a, c], 2);
    expect((await getVm(rig.clients, 'sp-ok')).state).toBe('RUNNING');
    expect(a.kernel.running()).toContain('sp-ok');
  });

  it('fails a VM whose coded pages are decompression bombs or of an unknown coding, with the reason, and keeps its node running', async () => {
    // 64 MiB of zeros in about 100 bytes; quality 4 codes them as small as the default 11, in a tenth
    // of the time (0.1-0.9 s against 2.7-7.7 s on the shared two-core machine).
    const bomb = zlib.brotliCompressSync(new Uint8Array(64 * 1024 * 1024), {
      params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 },
    });
    for (const [id, coding, reason] of [
      ['sp-bomb', 'br', /no usable image: .*does not decode: a coded block decodes to more than 65536 bytes/],
      ['sp-zstd', 'zstd', /no usable image: .*coded "zstd", which this node cannot read/],
    ] as const) {
      const [a, c] = [rig.anAgent(`${id}-a`, { log }), rig.anAgent(`${id}-c`, { log })];
      const ran = await rig.runVm([a, c], { id, guest: GUEST, memPages: 24 }, 6);
      expect(ran.image).toBeDefined();
      const other = await rig.runVm([c], { id: `${id}-ok`, guest: GUEST, memPages: 24 }, 1);
      expect(other.state).toBe('RUNNING');
      // every coded whole page of every image now points at the bomb, coded as `coding`
      const bombKey = `images/${id}/9/9/pack-0.bin`;
      await rig.clients.s3.send(
        new PutObjectCommand({ Bucket: rig.clients.bucketName, Key: bombKey, Body: bomb }),
      );
      let bombs = 0;
      await rewriteManifests(id, (m) => {
        const at = m.packs.push(bombKey) - 1;
        m.pages = m.pages.map((e) => {
          if (e.length !== 7 || e[5] !== null) return e;
          bombs++;
          return [e[0], at, 0, e[3], bomb.byteLength, null, coding as 'br'];
        });
      });
      expect(bombs).toBeGreaterThan(0);
      await restartElsewhere(rig.clients, {
        id,
        deadNode: `${id}-a`,
        fence: ran.fence,
        node: `${id}-c`,
        now: rig.now,
        seen: 'RUNNING',
      });
      const failed = await until(async () => {
        await rig.cycle([c], 1);
        const vm = await getVm(rig.clients, id);
        return vm.state === 'FAILED' ? vm : undefined;
      });
      expect(failed.reason).toMatch(reason);
      expect(c.kernel.has(id)).toBe(false);
      // the node carries on: its other VM still runs there
      await rig.cycle([c], 2);
      expect((await getVm(rig.clients, `${id}-ok`)).state).toBe('RUNNING');
      expect(c.kernel.running()).toContain(`${id}-ok`);
    }
  });
});
