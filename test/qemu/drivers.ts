// Qemu drivers for tests, one per "node", each in its own work directory under one scratch
// directory, on the image store the test gives; every VM is stopped after each test and the
// directory removed after the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { QemuDriver } from '../../node-agent/drivers/qemu/driver.ts';
import type { BlobStore } from '../../shared/storage/image-store.ts';
import { QEMU } from './support.ts';

/** `aNode(id)` makes a TCG qemu driver whose work directory is `workDir(id)`; `blobs()` is read then. */
export function qemuNodes(prefix: string, blobs: () => BlobStore) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const drivers: QemuDriver[] = [];
  afterEach(async () => {
    await Promise.all(drivers.map((d) => d.stopAll()));
    drivers.length = 0;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const workDir = (nodeId: string) => join(dir, nodeId);
  const aNode = (nodeId: string) => {
    const driver = new QemuDriver({
      nodeId,
      binary: QEMU,
      workDir: workDir(nodeId),
      accel: 'tcg',
      blobs: blobs(),
      weights: { cpu: 1, io: 1, mem: 1 },
      clock: Date.now,
    });
    drivers.push(driver);
    return driver;
  };
  return { aNode, workDir };
}
