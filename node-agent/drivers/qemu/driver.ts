// The qemu driver: real x86 VMs, one QEMU process each, beside the wasm kernel. Every saved state
// (checkpoint, suspend, migration) is QEMU's own migration stream, uploaded to the image store as
// it is produced; a VM starts from one in a new process with `-incoming`.
import { join } from 'node:path';
import { vmLoad } from '../../../shared/domain/load.ts';
import type { LoadFactors, Weights } from '../../../shared/domain/types.ts';
import type { ImageRef } from '../../../shared/domain/vm-state.ts';
import { Conflict, InvalidInput, NotFound } from '../../../shared/storage/errors.ts';
import type { BlobStore } from '../../../shared/storage/image-store.ts';
import type { GuestSpec } from '../../../shared/storage/vms.ts';
import { qemuImageOf } from './images.ts';
import {
  type Accel,
  type MigrationStats,
  type OutgoingMigration,
  type ProcessSample,
  QemuProcess,
} from './process.ts';
import { guestMedia } from './registered-images.ts';
import { serialDigest } from './serial.ts';
import { readStateManifest, startStateUpload, stateStream } from './state-store.ts';

export interface QemuDriverOptions {
  nodeId: string;
  binary: string;
  /** Where this node keeps its VMs' sockets and serial logs, and materialised images. */
  workDir: string;
  accel: Accel;
  blobs: BlobStore;
  weights: Weights;
  clock: () => number;
  /** Longest a save or load may take before it fails. */
  migrationTimeoutMs?: number;
  /** Bytes of QEMU's stream per object in the image store (tests use small parts). */
  statePartBytes?: number;
  /** Serial log bytes per VM before it is rotated (default 1 MiB). */
  serialLogBytes?: number;
}

export interface QemuLaunch {
  id: string;
  /** The fence the node holds the VM under; written into state keys so saves never collide. */
  fence: number;
  /** `qemu:<image>`, with the image's parameters (`hz` for the counter). */
  guest: GuestSpec;
  /** Guest RAM in 64 KiB pages; the VM gets at least 16 MiB. */
  memPages: number;
  /** Start from this saved state instead of booting. */
  image?: ImageRef;
  /** Load but keep the vCPU stopped until `resume` (a migration target before it owns the VM). */
  paused?: boolean;
}

export interface QemuCheckpoint {
  image: ImageRef;
  /** Bytes written to the image store (stream parts and manifest). */
  bytes: number;
  /** QEMU's figures for the stream. */
  migration: MigrationStats;
}

export interface QemuMeasurement {
  id: string;
  factors: LoadFactors;
  load: number;
  cpuNanos: number;
  ioOps: number;
  ioBytes: number;
  residentBytes: number;
  digest: string;
  paused: boolean;
}

interface QemuVm {
  launch: QemuLaunch;
  process: QemuProcess;
  seq: number;
  paused: boolean;
  memMiB: number;
  last: ProcessSample & { at: number };
  outbound?: Outbound;
  /** Set once a migration out began with the guest running: an abort runs it here again. */
  resumeOnAbort?: boolean;
}

/** A VM being started: its process once spawned. */
interface Starting {
  process?: QemuProcess;
}

interface Outbound {
  upload: ReturnType<typeof startStateUpload>;
  migration: OutgoingMigration;
  seq: number;
  precopyBytes: number;
}

const MIB_PAGES = 16; // 64 KiB pages per MiB
const MIN_MEM_MIB = 16;

export class QemuDriver {
  private readonly vms = new Map<string, QemuVm>();
  /** VMs still starting (their process spawning or loading a saved state): `stop` ends them too. */
  private readonly starting = new Map<string, Starting>();
  private spawned = 0;

  constructor(readonly options: QemuDriverOptions) {}

  get accel(): Accel {
    return this.options.accel;
  }

  /** Whether the VM is here: running, paused, or still starting (see `start`). */
  has(id: string): boolean {
    return this.vms.has(id) || this.starting.has(id);
  }

  /** Whether QEMU has pre-copied the VM and stopped it for a switchover that has not happened yet. */
  isMigratingOut(id: string): boolean {
    return this.vms.get(id)?.outbound !== undefined;
  }

  running(): string[] {
    return [...this.vms.values()].filter((v) => !v.paused).map((v) => v.launch.id);
  }

  /**
   * Boots the VM's image, or loads its saved state into a new QEMU process. The VM is here (`has`)
   * from the call on, and a `stop` at any point of the start ends it: the start then fails and
   * leaves no process behind, even one that was still being spawned when the stop came.
   */
  async start(launch: QemuLaunch): Promise<void> {
    if (this.has(launch.id)) throw new Conflict(`VM ${launch.id} is already on node ${this.options.nodeId}`);
    const starting: Starting = {};
    this.starting.set(launch.id, starting);
    // stopped meanwhile (the node fenced itself, or gave the VM up): it must not run here
    const goOn = () => {
      if (this.starting.get(launch.id) !== starting)
        throw new Conflict(`VM ${launch.id} was stopped on node ${this.options.nodeId} while it started`);
    };
    try {
      const vm = await this.launch(launch, starting, goOn);
      goOn();
      this.vms.set(launch.id, vm);
    } catch (error) {
      if (starting.process) {
        await starting.process.kill();
        starting.process.dispose();
      }
      throw error;
    } finally {
      if (this.starting.get(launch.id) === starting) this.starting.delete(launch.id);
    }
  }

  /** The steps of `start`, each after `goOn` (which throws once the VM was stopped). */
  private async launch(launch: QemuLaunch, starting: Starting, goOn: () => void): Promise<QemuVm> {
    const image = qemuImageOf(launch.guest.kind);
    if (image === undefined) throw new InvalidInput(`guest ${launch.guest.kind} is not a qemu:<image> guest`);
    const media = await guestMedia(
      this.options.blobs,
      join(this.options.workDir, 'images'),
      image,
      launch.guest.params,
    );
    const memMiB = Math.max(MIN_MEM_MIB, Math.ceil(launch.memPages / MIB_PAGES));
    const manifest = launch.image
      ? await readStateManifest(this.options.blobs, launch.image.manifest)
      : undefined;
    if (manifest && manifest.memMiB !== memMiB)
      throw new InvalidInput(`saved state of ${launch.id} has ${manifest.memMiB} MiB of RAM, not ${memMiB}`);
    goOn();
    const process = await QemuProcess.spawn({
      binary: this.options.binary,
      dir: join(this.options.workDir, 'vms', `${launch.id}-${launch.fence}-${++this.spawned}`),
      accel: this.options.accel,
      memMiB,
      ...media,
      paused: true,
      incoming: manifest !== undefined,
      ...(manifest ? { serial: manifest.serial } : {}),
      ...(this.options.serialLogBytes ? { serialLogBytes: this.options.serialLogBytes } : {}),
    });
    starting.process = process;
    goOn();
    if (manifest) await process.migrateIn(stateStream(this.options.blobs, manifest), this.timeout());
    goOn();
    if (!launch.paused) await process.resume();
    return {
      launch,
      process,
      seq: launch.image?.seq ?? 0,
      paused: launch.paused === true,
      memMiB,
      last: { ...(await this.sampleOf(process)), at: this.options.clock() },
    };
  }

  async pause(id: string): Promise<void> {
    const vm = this.get(id);
    if (!vm.paused) await vm.process.pause();
    vm.paused = true;
  }

  async resume(id: string): Promise<void> {
    const vm = this.get(id);
    if (vm.paused) await vm.process.resume();
    vm.paused = false;
  }

  /** Ends the VM's process without saving anything (it moved on, or the node lost its fence). */
  async stop(id: string): Promise<void> {
    const starting = this.starting.get(id);
    this.starting.delete(id);
    // a start in progress fails at its next step, or at once when its process is killed, and cleans up
    if (starting?.process) await starting.process.kill();
    const vm = this.vms.get(id);
    if (!vm) return;
    this.vms.delete(id);
    await vm.process.kill();
    vm.process.dispose();
  }

  /** Self-fencing: every QEMU process of this node ends at once (starting ones too), nothing saved. */
  async stopAll(): Promise<void> {
    await Promise.all([...new Set([...this.vms.keys(), ...this.starting.keys()])].map((id) => this.stop(id)));
  }

  /**
   * Saves the VM's whole state to the image store. A running VM is saved live and goes on running
   * afterwards (QEMU stops it only for the switchover); a paused one stays paused.
   */
  async checkpoint(id: string): Promise<QemuCheckpoint> {
    const vm = this.get(id);
    if (vm.outbound) throw new Conflict(`VM ${id} is migrating out`);
    const wasRunning = !vm.paused;
    try {
      return await this.finishSave(vm, await this.beginSave(vm));
    } finally {
      // a failed save (store down, say) must not leave a running guest stopped
      if (wasRunning && (await vm.process.status()).running === false) await vm.process.resume();
    }
  }

  /**
   * Migration, source side, first part: QEMU's pre-copy rounds into a new saved state while the
   * guest runs, until QEMU stops the guest for the switchover. Returns the pre-copy bytes.
   */
  async precopy(id: string): Promise<{ bytes: number }> {
    const vm = this.get(id);
    if (vm.outbound) return { bytes: vm.outbound.precopyBytes };
    vm.resumeOnAbort ??= !vm.paused;
    vm.outbound = await this.beginSave(vm);
    vm.paused = true;
    return { bytes: vm.outbound.precopyBytes };
  }

  /**
   * Migration, source side, second part: device state and the last dirty pages; the guest stays
   * stopped. After a failure, calling it again saves the stopped guest whole under a new sequence.
   */
  async finalState(id: string): Promise<QemuCheckpoint> {
    const vm = this.get(id);
    vm.resumeOnAbort ??= !vm.paused;
    const out = vm.outbound ?? (await this.beginSave(vm));
    delete vm.outbound;
    vm.paused = true;
    return this.finishSave(vm, out);
  }

  /** Gives up an outbound migration that was not handed over: the guest runs here again if it ran. */
  async abortMigration(id: string): Promise<void> {
    const vm = this.get(id);
    const out = vm.outbound;
    delete vm.outbound;
    if (out) await out.migration.cancel();
    if (vm.resumeOnAbort) {
      if (!(await vm.process.status()).running) await vm.process.resume();
      vm.paused = false;
    }
    delete vm.resumeOnAbort;
  }

  digest(id: string): string {
    return serialDigest(this.get(id).process.serial.sync());
  }

  /** Load factors of each VM since the previous call, from its process and QEMU's block counters. */
  async measure(): Promise<QemuMeasurement[]> {
    const out: QemuMeasurement[] = [];
    for (const vm of this.vms.values()) {
      if (!vm.process.alive) continue;
      const now = { ...(await this.sampleOf(vm.process)), at: this.options.clock() };
      const seconds = Math.max(1e-3, (now.at - vm.last.at) / 1000);
      const factors: LoadFactors = {
        cpu: (now.cpuNanos - vm.last.cpuNanos) / 1e9 / seconds,
        io: (now.ioOps - vm.last.ioOps) / seconds / 1000,
        mem: now.residentBytes / 2 ** 30,
      };
      out.push({
        id: vm.launch.id,
        factors,
        load: vmLoad(factors, this.options.weights),
        cpuNanos: now.cpuNanos - vm.last.cpuNanos,
        ioOps: now.ioOps - vm.last.ioOps,
        ioBytes: now.ioBytes - vm.last.ioBytes,
        residentBytes: now.residentBytes,
        digest: serialDigest(vm.process.serial.sync()),
        paused: vm.paused,
      });
      vm.last = now;
    }
    return out;
  }

  /** The QEMU process of a VM (tests and benches read its serial console and pid). */
  processOf(id: string): QemuProcess {
    const process = this.processIfAny(id);
    if (!process) throw new NotFound('VM', `${id} on node ${this.options.nodeId}`);
    return process;
  }

  /** The VM's QEMU process; undefined when the VM is not here, or its process is not spawned yet. */
  processIfAny(id: string): QemuProcess | undefined {
    return this.starting.get(id)?.process ?? this.vms.get(id)?.process;
  }

  private async beginSave(vm: QemuVm): Promise<Outbound> {
    // a new sequence for every attempt: keys are written once, also those of a failed attempt
    const seq = ++vm.seq;
    const upload = startStateUpload(
      this.options.blobs,
      { vm: vm.launch.id, fence: vm.launch.fence, seq },
      this.options.statePartBytes,
    );
    const migration = await vm.process.startMigration((chunk) => upload.sink(chunk), this.timeout());
    try {
      const { precopyBytes } = await migration.switchover;
      return { upload, migration, seq, precopyBytes };
    } catch (error) {
      await migration.cancel();
      throw error;
    }
  }

  private async finishSave(vm: QemuVm, out: Outbound): Promise<QemuCheckpoint> {
    const migration = await out.migration.complete();
    // QEMU has stopped the guest: the serial log now holds every byte it wrote
    const serial = vm.process.serial.sync();
    const now = this.options.clock();
    const saved = await out.upload.finish({
      guest: vm.launch.guest.kind,
      memMiB: vm.memMiB,
      serial,
      digest: serialDigest(serial),
      vtod: now,
      migration,
      createdAt: now,
    });
    return { image: saved.ref, bytes: saved.bytes, migration };
  }

  private async sampleOf(process: QemuProcess): Promise<ProcessSample> {
    return process.sample();
  }

  private timeout() {
    return { timeoutMs: this.options.migrationTimeoutMs ?? 60_000 };
  }

  private get(id: string): QemuVm {
    const vm = this.vms.get(id);
    if (!vm) throw new NotFound('VM', `${id} on node ${this.options.nodeId}`);
    return vm;
  }
}
