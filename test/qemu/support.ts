// Shared set-up of the qemu tests: a scratch directory, the counter guest on a floppy, processes
// and drivers whose VMs always end when a test ends (even a failing one), and the counter's digest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { counterFloppy, expectedOutput } from '../../node-agent/drivers/qemu/counter-image.ts';
import { QemuDriver, type QemuDriverOptions } from '../../node-agent/drivers/qemu/driver.ts';
import { QemuProcess, type QemuSpawn } from '../../node-agent/drivers/qemu/process.ts';
import { emptySerial, foldSerial, serialDigest } from '../../node-agent/drivers/qemu/serial.ts';

export const QEMU = 'qemu-system-x86_64';

/** A scratch directory with the counter floppy, and a spawner whose processes die after each test. */
export function qemuScratch() {
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-qemu-'));
  const floppy = join(dir, 'counter.img');
  writeFileSync(floppy, counterFloppy());
  const live = new Set<QemuProcess>();
  let n = 0;
  afterEach(async () => {
    await Promise.all([...live].map((p) => p.kill()));
    live.clear();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    floppy,
    async spawn(options: Partial<QemuSpawn> = {}): Promise<QemuProcess> {
      const p = await QemuProcess.spawn({
        binary: QEMU,
        dir: join(dir, `vm-${n++}`),
        accel: 'tcg',
        memMiB: 16,
        floppy,
        ...options,
      });
      live.add(p);
      return p;
    },
  };
}

export const WAIT = 15_000;

/** The digest of a counter guest that printed lines 1..`lines`, moved or not. */
export const digestAt = (lines: number) => serialDigest(foldSerial(emptySerial(), expectedOutput(1, lines)));

/** Resolves once the VM's guest on `driver` printed `n` lines. */
export const waitLines = (driver: QemuDriver, id: string, n: number) =>
  driver.processOf(id).serial.wait((s) => s.lines >= n, WAIT);

/**
 * A maker of qemu drivers ("nodes") under one scratch directory, TCG, with the test's image store;
 * every VM they run ends after each test, the directory after the file.
 */
export function qemuNodes(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `seesaw-qemu-${name}-`));
  const made: QemuDriver[] = [];
  afterEach(async () => {
    await Promise.all(made.map((d) => d.stopAll()));
    made.length = 0;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return (nodeId: string, options: Pick<QemuDriverOptions, 'blobs'> & Partial<QemuDriverOptions>) => {
    const driver = new QemuDriver({
      nodeId,
      binary: QEMU,
      workDir: join(dir, nodeId),
      accel: 'tcg',
      weights: { cpu: 1, io: 1, mem: 1 },
      clock: Date.now,
      ...options,
    });
    made.push(driver);
    return driver;
  };
}

/**
 * The counter's own digest for as many lines as `digest` names: equal to `digest` exactly when
 * the guest printed lines 1..n in order, once each. A digest read once cannot race a new line.
 */
export const counterDigestFor = (digest: string) => digestAt(Number(digest.split(':')[1]));
