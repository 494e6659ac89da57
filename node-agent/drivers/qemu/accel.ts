// Which accelerator this node's QEMU can use. /dev/kvm existing is not enough: on some hosts it
// opens but runs only paravirtualised guests, and a real guest then hangs without an error. So
// the probe boots the counter guest under KVM and calls KVM usable only if its first serial line
// comes out; otherwise the node runs its QEMU VMs under TCG (software emulation) and says so.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { materialiseImage } from './images.ts';
import { type Accel, QemuProcess } from './process.ts';

export const DEFAULT_QEMU_BINARY = 'qemu-system-x86_64';

/** The QEMU version line when `binary` runs, else undefined (the node then offers no qemu driver). */
export function qemuVersion(binary = DEFAULT_QEMU_BINARY): string | undefined {
  const out = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (out.status !== 0) return undefined;
  return out.stdout.split('\n')[0]?.trim() || undefined;
}

/** KVM if a guest really runs under it within `timeoutMs`, else TCG; `why` says what decided it. */
export async function detectAccel(
  binary = DEFAULT_QEMU_BINARY,
  { timeoutMs = 3_000, device = '/dev/kvm' }: { timeoutMs?: number; device?: string } = {},
): Promise<{ accel: Accel; why: string }> {
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', why: `${device} is not usable by this process` };
  }
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-kvm-probe-'));
  let vm: QemuProcess | undefined;
  try {
    const media = materialiseImage(dir, 'counter');
    vm = await QemuProcess.spawn({ binary, dir: join(dir, 'vm'), accel: 'kvm', memMiB: 16, ...media });
    await vm.serial.wait((s) => s.lines >= 1, timeoutMs, vm.exited);
    return { accel: 'kvm', why: 'a test guest ran under KVM' };
  } catch (error) {
    return { accel: 'tcg', why: `KVM did not run a test guest: ${(error as Error).message.split('\n')[0]}` };
  } finally {
    await vm?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
