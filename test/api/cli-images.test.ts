// `seesaw images register|ls|show|rm` and `vm create --guest qemu:<image>` against a running API:
// a disk registered from a file (qcow2 told from raw by its magic), the image listed, shown,
// booted as a VM, refused deletion while the VM exists; and every mistake a message and exit 1.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import { counterFloppy } from '../../node-agent/drivers/qemu/counter-image.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { findImage } from '../../shared/storage/image-registry.ts';
import { registerNode } from '../../shared/storage/nodes.ts';
import { seesaw as cli, scratchDir } from '../cli/support.ts';
import { freshStores } from '../support/stores.ts';

const TOKEN = 'cli-images-token';

describe('seesaw images', () => {
  let clients: Clients;
  let server: ApiServer;
  const dir = scratchDir('seesaw-images-');
  const disk = join(dir, 'counter.img');
  const seesaw = (...args: string[]) => cli(args, { env: { SEESAW_TOKEN: TOKEN, SEESAW_API: server.url } });

  beforeAll(async () => {
    clients = await freshStores();
    await registerNode(clients, {
      spec: {
        id: 'q1',
        capacity: 4,
        weights: { cpu: 1, io: 1, mem: 1 },
        memCapacityPages: 8192,
        labels: { qemu: 'tcg' },
      },
      incarnation: 'inc-q1',
      now: Date.now(),
      leaseMs: 600_000,
    });
    writeFileSync(disk, counterFloppy(50));
    server = await startApiServer({ clients, token: TOKEN, port: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('registers a raw disk from a file, lists it, shows it, and launches a VM from it', async () => {
    const reg = await seesaw('images', 'register', 'tiny', disk);
    expect(reg.stderr).toBe('');
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(/^registered tiny: raw, 1474560 bytes, sha256 [0-9a-f]{64}$/m);
    expect((await findImage(clients, 'tiny'))?.format).toBe('raw');

    const again = await seesaw('images', 'register', 'tiny', disk, '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ name: 'tiny', format: 'raw' });

    const ls = await seesaw('images', 'ls');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+FORMAT\s+BYTES\s+VIRTUAL\s+CREATED\ntiny\s+raw\s+1474560\s+1474560/);
    const show = await seesaw('images', 'show', 'tiny');
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/guest\s+qemu:tiny/);

    const vm = await seesaw('vm', 'create', '--guest', 'qemu:tiny', '--json');
    expect(vm.stderr).toBe('');
    expect(JSON.parse(vm.stdout)).toMatchObject({ owner: 'q1', guest: { kind: 'qemu:tiny' } });
    const rm = await seesaw('images', 'rm', 'tiny');
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(/^seesaw: 409 Conflict: image tiny is in use by 1 VM/);
    expect(await findImage(clients, 'tiny')).toBeDefined();
  });

  it('tells a qcow2 file by its magic and deletes an unused image', async () => {
    const q = join(dir, 'disk.qcow2');
    const bytes = Buffer.alloc(4096);
    bytes.set([0x51, 0x46, 0x49, 0xfb]);
    bytes.writeUInt32BE(2, 4);
    bytes.writeUInt32BE(16, 20);
    bytes.writeBigUInt64BE(1n << 20n, 24);
    writeFileSync(q, bytes);
    const reg = await seesaw('images', 'register', 'small', q, '--json');
    expect(reg.stderr).toBe('');
    expect(JSON.parse(reg.stdout)).toMatchObject({ format: 'qcow2', virtualBytes: 2 ** 20 });
    const rm = await seesaw('images', 'rm', 'small');
    expect(rm.code).toBe(0);
    expect(rm.stdout.trim()).toBe('deleted small');
    expect(await findImage(clients, 'small')).toBeUndefined();
  });

  it('fails with a message and exit 1 on a missing file, bad bytes, bad flags or an unknown image', async () => {
    const notBootable = join(dir, 'zeros.img');
    writeFileSync(notBootable, Buffer.alloc(1024));
    const cases: [string[], RegExp][] = [
      [['images', 'register', 'x', join(dir, 'nope.img')], /cannot read .*nope\.img: ENOENT/],
      [['images', 'register', 'x', notBootable], /422 .*boot sector/],
      [['images', 'register', 'x'], /give the disk file/],
      [['images', 'register', 'x', disk, '--format', 'vmdk'], /--format wants raw or qcow2/],
      [['images', 'register', 'x', disk, '--cmdline', 'quiet'], /go with --kernel/],
      [['images', 'register', '-x', disk], /./],
      [['images', 'show', 'nope'], /404 .*image nope not found/],
      [['images', 'rm', 'nope'], /404 .*image nope not found/],
    ];
    for (const [args, message] of cases) {
      const out = await seesaw(...args);
      expect(out.code, args.join(' ')).toBe(1);
      expect(out.stderr, args.join(' ')).toMatch(message);
    }
    expect(await findImage(clients, 'x')).toBeUndefined();
  });
});
