// Spawned by process.test.ts: starts one QEMU process, prints its pid, then waits to be killed.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { counterFloppy } from '../../node-agent/drivers/qemu/counter-image.ts';
import { QemuProcess } from '../../node-agent/drivers/qemu/process.ts';

const dir = process.argv[2]!;
writeFileSync(join(dir, 'counter.img'), counterFloppy());
const vm = await QemuProcess.spawn({
  binary: 'qemu-system-x86_64',
  dir: join(dir, 'vm'),
  accel: 'tcg',
  memMiB: 16,
  floppy: join(dir, 'counter.img'),
});
process.stdout.write(`${vm.pid}\n`);
setInterval(() => {}, 1000);
