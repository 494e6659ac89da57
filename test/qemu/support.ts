// Shared set-up of the qemu tests: a scratch directory, the counter guest on a floppy, and
// processes that are always killed when a test ends (even a failing one).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import { counterFloppy } from '../../node-agent/drivers/qemu/counter-image.ts';
import { QemuProcess, type QemuSpawn } from '../../node-agent/drivers/qemu/process.ts';

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
