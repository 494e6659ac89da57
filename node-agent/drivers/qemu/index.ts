// The `qemu` driver behind the Driver contract (node-agent/drivers/types.ts). QEMU pre-copies by
// itself: `precopy` writes nothing, and `finalState` runs QEMU's live migration (pre-copy rounds
// while the guest runs, a short stop, device state) into the image store.
import type { ImageRef } from '../../../shared/domain/vm-state.ts';
import type { Driver, FinalState, VmMeasurement } from '../types.ts';
import { DEFAULT_QEMU_BINARY, detectAccel, qemuVersion } from './accel.ts';
import { QemuDriver, type QemuDriverOptions } from './driver.ts';

export { QemuDriver, type QemuDriverOptions } from './driver.ts';

const PAGE = 65536;

/** The qemu driver over one node's QemuDriver (which the caller keeps for stopAll and tests). */
export function qemuDriver(qemu: QemuDriver): Driver {
  const lastImage = new Map<string, ImageRef>();
  const failures = new Map<string, string>();
  const targetLoads = new Map<string, number>();
  const remember = <T extends { image: ImageRef }>(id: string, r: T) => {
    lastImage.set(id, r.image);
    return r;
  };
  return {
    name: 'qemu',
    async start(vm) {
      await qemu.start({
        id: vm.id,
        fence: vm.fence,
        guest: vm.guest,
        memPages: vm.memPages,
        ...(vm.image ? { image: vm.image } : {}),
        ...(vm.paused ? { paused: true } : {}),
      });
      failures.delete(vm.id);
      if (vm.image) lastImage.set(vm.id, vm.image);
      if (vm.targetLoad !== undefined) targetLoads.set(vm.id, vm.targetLoad);
    },
    async stop(id) {
      lastImage.delete(id);
      targetLoads.delete(id);
      await qemu.stop(id);
    },
    suspend: (id) => qemu.pause(id),
    async resume(id) {
      // a guest QEMU stopped for a migration that is not handed over runs on here
      await qemu.abortMigration(id);
      await qemu.resume(id);
    },
    has: (id) => qemu.has(id),
    running: () => qemu.running(),
    failure(id) {
      const process = qemu.processIfAny(id);
      if (!process) return qemu.has(id) ? failures.get(id) : undefined;
      if (!process.alive)
        failures.set(id, `QEMU process ${process.pid} exited: ${process.stderrTail().trim()}`);
      return failures.get(id);
    },
    setTargetLoad(id, targetLoad) {
      if (targetLoad === undefined) targetLoads.delete(id);
      else targetLoads.set(id, targetLoad);
    },
    async measure(): Promise<VmMeasurement[]> {
      return (await qemu.measure()).map((m) => ({
        id: m.id,
        factors: m.factors,
        load: m.load,
        // QEMU schedules its guests itself: no work units, and no steal the node could count
        workDemanded: 0,
        workDone: 0,
        steal: 0,
        cpuNanos: m.cpuNanos,
        ioOps: m.ioOps,
        ioBytes: m.ioBytes,
        residentPages: Math.ceil(m.residentBytes / PAGE),
        dirtiedPages: 0,
        netBytes: 0,
        digest: m.digest,
        vtod: qemu.options.clock(),
      }));
    },
    digest: (id) => qemu.digest(id),
    async checkpoint(id) {
      const saved = await qemu.checkpoint(id);
      return remember(id, {
        image: saved.image,
        bytes: saved.bytes,
        pages: Math.ceil(saved.migration.ramBytes / PAGE),
      });
    },
    async precopy(id) {
      // QEMU pre-copies inside finalState; this round writes nothing and points at the last image
      const image = lastImage.get(id) ?? { manifest: '', seq: 0, digest: qemu.digest(id), vtod: 0 };
      return { image, bytes: 0, pages: 0 };
    },
    async finalState(id): Promise<FinalState> {
      const saved = await qemu.finalState(id);
      return remember(id, {
        image: saved.image,
        bytes: saved.bytes,
        pages: Math.ceil(saved.migration.ramBytes / PAGE),
        precopy: { rounds: saved.migration.rounds, bytes: saved.migration.precopyBytes },
        downtimeMs: saved.migration.downtimeMs,
      });
    },
  };
}

/**
 * This node's qemu driver when qemu-system-x86_64 runs here, else undefined (the node then offers
 * wasm only). The accelerator is KVM when a test guest runs under it, TCG otherwise.
 */
export async function qemuDriverIfAvailable(
  options: Omit<QemuDriverOptions, 'accel' | 'binary'> & { binary?: string; accel?: 'kvm' | 'tcg' },
): Promise<{ driver: Driver; qemu: QemuDriver; version: string; why: string } | undefined> {
  const binary = options.binary ?? DEFAULT_QEMU_BINARY;
  const version = qemuVersion(binary);
  if (!version) return undefined;
  const chosen = options.accel ? { accel: options.accel, why: 'configured' } : await detectAccel(binary);
  const qemu = new QemuDriver({ ...options, binary, accel: chosen.accel });
  return { driver: qemuDriver(qemu), qemu, version, why: chosen.why };
}
