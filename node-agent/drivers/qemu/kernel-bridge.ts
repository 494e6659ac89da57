// A bridge for the agent loop, which still drives one synchronous `Kernel` (node-agent/kernel/
// types.ts): the node's wasm kernel and its qemu driver seen as one Kernel. wasm guests go straight
// to the kernel; for an x86 guest the synchronous calls (pause, resume, stop) queue QMP work per VM,
// and the next asynchronous call on that VM (checkpoint, start) waits for it. Meant to go once the
// agent drives a DriverSet (node-agent/drivers/types.ts) itself.
//
// How the agent's protocol maps onto QEMU: the agent writes no pre-copy rounds of an x86 guest
// (`precopiesItself`), so a migration saves the guest once: `pause` starts QEMU's live pre-copy,
// which ends with QEMU stopping the guest before the switchover; the checkpoint that follows a
// pause (the final delta of a migration, the full image of a suspend, a shutdown's last delta)
// completes that stream into the image store; `resume` after a pause gives the pre-copy up and
// runs the guest again; a checkpoint of a running x86 guest is a live one that leaves it running.
import { driverOf } from '../../../shared/domain/guests.ts';
import { Conflict } from '../../../shared/storage/errors.ts';
import type { AgentKernel } from '../../agent/types.ts';
import type { CheckpointResult, Kernel, VmMeasurement } from '../../kernel/types.ts';
import type { Driver } from '../types.ts';
import type { QemuDriver } from './driver.ts';
import { qemuDriver } from './index.ts';

/** The wasm kernel and a qemu driver as one Kernel, for the agent. */
export function kernelWithQemu(
  kernel: Kernel,
  qemu: QemuDriver,
  log?: (msg: string, err: Error) => void,
): AgentKernel {
  const driver: Driver = qemuDriver(qemu);
  const queues = new Map<string, Promise<void>>();
  const failures = new Map<string, string>();
  /** Runs `op` after the VM's queued work; a failure is kept as the VM's failure and logged. */
  const enqueue = (id: string, what: string, op: () => Promise<unknown>) => {
    const next = (queues.get(id) ?? Promise.resolve()).then(op).then(
      () => {},
      (error: Error) => {
        if (qemu.has(id)) failures.set(id, `${what} failed: ${error.message}`);
        log?.(`qemu ${what} of ${id} failed`, error);
      },
    );
    queues.set(id, next);
    return next;
  };
  const settled = (id: string) => queues.get(id) ?? Promise.resolve();
  /** x86 starts still waiting for their VM's queued work: here already, and a stop cancels them. */
  const waiting = new Map<string, { stopped: boolean }>();
  const isQemu = (id: string) => qemu.has(id) || waiting.has(id);
  let measured: VmMeasurement[] = [];
  let measuring: Promise<void> | undefined;

  return {
    nodeId: kernel.nodeId,
    async start(vm) {
      if (driverOf(vm.guest.kind) !== 'qemu') return kernel.start(vm);
      const wait = { stopped: false };
      waiting.set(vm.id, wait);
      try {
        await settled(vm.id);
      } finally {
        if (waiting.get(vm.id) === wait) waiting.delete(vm.id);
      }
      // a fence (stop) while it waited; from here on the driver's own start answers a stop
      if (wait.stopped)
        throw new Conflict(`VM ${vm.id} was stopped on node ${kernel.nodeId} while it started`);
      failures.delete(vm.id);
      return driver.start(vm);
    },
    pause(id) {
      if (!isQemu(id)) return kernel.pause(id);
      void enqueue(id, 'pre-copy', () => qemu.precopy(id));
    },
    resume(id) {
      if (!isQemu(id)) return kernel.resume(id);
      void enqueue(id, 'resume', async () => driver.resume(id));
    },
    stop(id) {
      if (!isQemu(id)) return kernel.stop(id);
      const wait = waiting.get(id);
      if (wait) wait.stopped = true;
      waiting.delete(id);
      void enqueue(id, 'stop', () => qemu.stop(id)).then(() => {
        if (!qemu.has(id)) queues.delete(id);
      });
      failures.delete(id);
      measured = measured.filter((m) => m.id !== id);
    },
    has: (id) => kernel.has(id) || isQemu(id),
    running: () => [...kernel.running(), ...qemu.running()],
    async checkpoint(id, mode, options): Promise<CheckpointResult> {
      if (!isQemu(id)) return kernel.checkpoint(id, mode, options);
      await settled(id);
      const failed = failures.get(id);
      if (failed) throw new Error(failed);
      // after a pause, QEMU has pre-copied and stopped the guest: complete that stream
      return qemu.isMigratingOut(id) ? driver.finalState(id) : driver.checkpoint(id, mode);
    },
    tick: () => kernel.tick(),
    // QEMU's live migration is the pre-copy: the agent's rounds would each save the whole guest
    precopiesItself: (kind) => driverOf(kind) === 'qemu',
    measure() {
      // QEMU is measured over QMP and /proc, asynchronously: each call returns the previous sample
      if (!measuring)
        measuring = Promise.resolve(driver.measure())
          .then((m) => {
            measured = m.filter((x) => isQemu(x.id));
          })
          .catch((error: Error) => log?.('measuring qemu VMs failed', error))
          .finally(() => {
            measuring = undefined;
          });
      return [...kernel.measure(), ...measured.filter((m) => isQemu(m.id))];
    },
    digest: (id) => (isQemu(id) ? qemu.digest(id) : kernel.digest(id)),
    failure: (id) => (isQemu(id) ? (failures.get(id) ?? driver.failure(id)) : kernel.failure?.(id)),
    setTargetLoad: (id, targetLoad) =>
      isQemu(id) ? driver.setTargetLoad(id, targetLoad) : kernel.setTargetLoad(id, targetLoad),
  };
}
