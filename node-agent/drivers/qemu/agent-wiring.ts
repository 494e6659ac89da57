// What the agent process (node-agent/main.ts) needs to offer the qemu driver beside its kernel:
// the driver if qemu-system-x86_64 runs here, the bridge the agent drives, the labels that tell
// the cluster this node runs QEMU VMs and under which accelerator, and a stop for shutdown.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Weights } from '../../../shared/domain/types.ts';
import type { Clients } from '../../../shared/storage/clients.ts';
import { s3Blobs } from '../../../shared/storage/image-store.ts';
import type { AgentKernel } from '../../agent/types.ts';
import type { Kernel } from '../../kernel/types.ts';
import { qemuDriverIfAvailable } from './index.ts';
import { kernelWithQemu } from './kernel-bridge.ts';

export interface QemuWiring {
  kernel: AgentKernel;
  /** `qemu=<kvm|tcg>` for the node item; empty when QEMU is not available here. */
  labels: Record<string, string>;
  /** Ends every QEMU process of this node (after the agent stopped). */
  stop(): Promise<void>;
}

/** The kernel alone when QEMU is not installed (logged), else the kernel and the qemu driver. */
export async function withQemu(
  kernel: Kernel,
  options: {
    nodeId: string;
    clients: Pick<Clients, 's3' | 'bucketName'>;
    weights: Weights;
    clock: () => number;
    workDir?: string;
    log: { info(o: object, m: string): void; warn(o: object, m: string): void };
  },
): Promise<QemuWiring> {
  const found = await qemuDriverIfAvailable({
    nodeId: options.nodeId,
    workDir: options.workDir ?? join(tmpdir(), `seesaw-qemu-${options.nodeId}`),
    blobs: s3Blobs(options.clients),
    weights: options.weights,
    clock: options.clock,
  });
  if (!found) {
    options.log.warn({}, 'qemu-system-x86_64 not found: this node offers the wasm driver only');
    return { kernel, labels: {}, stop: async () => {} };
  }
  options.log.info({ qemu: found.version, accel: found.qemu.accel, why: found.why }, 'qemu driver ready');
  return {
    kernel: kernelWithQemu(kernel, found.qemu, (msg, err) => options.log.warn({ err: err.message }, msg)),
    labels: { qemu: found.qemu.accel },
    stop: () => found.qemu.stopAll(),
  };
}
