// Guest images for the qemu driver, materialised as files on the node. `qemu:counter` is built
// here (the counter boot sector on a floppy); its rate comes from the guest's `hz` parameter.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInput } from '../../../shared/storage/errors.ts';
import { COUNTER_HZ, counterFloppy } from './counter-image.ts';

/** The image part of a `qemu:<image>` guest kind, or undefined for any other kind. */
export function qemuImageOf(kind: string): string | undefined {
  return kind.startsWith('qemu:') ? kind.slice('qemu:'.length) : undefined;
}

/** How QEMU attaches a materialised image. */
export interface GuestMedia {
  floppy?: string;
}

/** Writes (once per node) the file for `image` under `dir` and says how to attach it. */
export function materialiseImage(
  dir: string,
  image: string,
  params: Record<string, number> = {},
): GuestMedia {
  if (image !== 'counter')
    throw new InvalidInput(`qemu image "${image}" is not known to this node (built in: counter)`);
  const hz = params.hz ?? COUNTER_HZ;
  if (!Number.isInteger(hz) || hz < 19 || hz > 1000)
    throw new InvalidInput(`qemu:counter hz ${hz} must be an integer from 19 to 1000`);
  const path = join(dir, `counter-${hz}.img`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, counterFloppy(hz));
    renameSync(tmp, path);
  }
  return { floppy: path };
}
