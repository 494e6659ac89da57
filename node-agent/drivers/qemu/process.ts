// One QEMU process per VM: spawn, QMP control (stop/cont/quit), measurement from /proc and
// query-blockstats, and QEMU's own migration stream in and out over Unix sockets that this process
// serves, so the stream goes straight between QEMU and the image store without touching disk.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { listenQmp, type QmpClient } from './qmp.ts';
import { SerialLog, type SerialState } from './serial.ts';

export type Accel = 'kvm' | 'tcg';

export interface QemuSpawn {
  /** The qemu-system-x86_64 binary. */
  binary: string;
  /** A directory of its own for this process (sockets, serial log); removed by `dispose`. */
  dir: string;
  accel: Accel;
  memMiB: number;
  /** The boot disk: a raw image, attached read-only as the first floppy (the counter guest) … */
  floppy?: string;
  /** … or a disk (raw or qcow2) attached through virtio, read-write unless `readonly` … */
  disk?: { path: string; format: 'raw' | 'qcow2'; readonly?: boolean };
  /** … or a Linux kernel booted directly (`-kernel`, `-initrd`, `-append`). */
  kernel?: { path: string; initrd?: string; append?: string };
  /** Start with the vCPU stopped (`-S`); `cont` runs it. */
  paused?: boolean;
  /** Wait for a migration stream (`-incoming defer`) instead of booting. */
  incoming?: boolean;
  /** The serial console as it stood when the state being loaded was saved. */
  serial?: SerialState;
  /** How long QEMU may take to connect to QMP. */
  startTimeoutMs?: number;
  /** The serial log is rotated once it holds this many bytes (default 1 MiB); see rotateSerial. */
  serialLogBytes?: number;
}

/** QEMU's own figures for one migration (QMP query-migrate once it completed). */
export interface MigrationStats {
  /** Bytes of the stream. */
  bytes: number;
  /** Guest RAM bytes sent (all rounds). */
  ramBytes: number;
  /** Dirty-bitmap sync rounds: 1 for a stopped VM, more when pre-copy had to resend dirtied pages. */
  rounds: number;
  /** Milliseconds the guest was stopped for the switchover, as QEMU measured it. */
  downtimeMs: number;
  /** Milliseconds from `migrate` to completion. */
  totalMs: number;
  /** Bytes sent before the switchover (pre-copy while the guest ran). */
  precopyBytes: number;
}

/** A migration QEMU is sending (see QemuProcess.startMigration). */
export interface OutgoingMigration {
  /** Resolves once QEMU pre-copied and stopped the guest before the switchover. */
  switchover: Promise<{ precopyBytes: number }>;
  /** Sends the device state and last dirty pages; QEMU's figures once complete. */
  complete(): Promise<MigrationStats>;
  /** Gives up: QEMU runs the guest again if it was running. */
  cancel(): Promise<void>;
}

interface MigrationEvents {
  paused: Promise<{ data?: Record<string, unknown> }>;
  finished: Promise<{ data?: Record<string, unknown> }>;
}

export interface ProcessSample {
  /** CPU time (user + system) of the whole QEMU process so far, in ns. */
  cpuNanos: number;
  residentBytes: number;
  ioOps: number;
  ioBytes: number;
}

export const SERIAL_LOG_BYTES = 1024 * 1024;
/** How often a process checks whether its serial log is due for rotation. */
const SERIAL_CHECK_MS = 1000;

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux/x86-64
const PAGE_BYTES = 4096;

/** CPU time and resident memory of a process, from /proc/<pid>/stat and /proc/<pid>/statm. */
export function procSample(pid: number): { cpuNanos: number; residentBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may hold spaces; fields after its closing parenthesis are fixed
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  const resident = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
  return { cpuNanos: (ticks * 1e9) / CLOCK_TICKS_PER_SECOND, residentBytes: resident * PAGE_BYTES };
}

export class QemuProcess {
  readonly serial: SerialLog;
  private exitError: Error | undefined;
  private migrations = 0;
  /** Serial log files so far (serial.log, then serial-1.log, …); one at a time is kept. */
  private serialFiles = 0;
  private rotating: Promise<void> | undefined;
  private readonly serialCheck: NodeJS.Timeout;
  /** Cleanups of the migration stream sockets still listening; run when the process ends. */
  private readonly endpoints = new Set<() => void>();
  /** Fires (never rejects) with an error when the process exits. */
  readonly exited: Promise<Error>;

  private constructor(
    readonly child: ChildProcess,
    readonly qmp: QmpClient,
    readonly options: QemuSpawn,
    serial: SerialLog,
    exited: Promise<Error>,
    private readonly stderr: () => string,
  ) {
    this.serial = serial;
    this.exited = exited.then((e) => {
      this.exitError = e;
      clearInterval(this.serialCheck);
      // A migration out that never completed or was cancelled (the VM stopped after its pre-copy)
      // would keep its socket listening, and the agent's process alive, for good.
      for (const cleanup of this.endpoints) cleanup();
      return e;
    });
    // a guest that prints forever must not fill the disk
    const limit = options.serialLogBytes ?? SERIAL_LOG_BYTES;
    this.serialCheck = setInterval(
      () => {
        if (!this.alive) return;
        this.serial.sync();
        if (this.serial.fileBytes >= limit) void this.rotateSerial();
      },
      Math.min(SERIAL_CHECK_MS, Math.max(50, limit / 64)),
    );
    this.serialCheck.unref();
  }

  /** Serial log rotations so far. */
  get serialRotations(): number {
    return this.serialFiles;
  }

  /**
   * Moves the serial console's log to a new file and removes the old one once read, so a VM keeps
   * at most about `serialLogBytes` of log on disk. QMP `chardev-change` gives the serial port a new
   * `null` backend logging to the new file: QEMU closes the old file before the command returns,
   * and no byte the guest writes is lost between the two (the chain in `serial` is unaffected).
   */
  rotateSerial(): Promise<void> {
    this.rotating ??= (async () => {
      const next = join(this.options.dir, `serial-${this.serialFiles + 1}.log`);
      rmSync(next, { force: true });
      await this.qmp.execute('chardev-change', {
        id: 'ser0',
        backend: { type: 'null', data: { logfile: next, logappend: false } },
      });
      this.serialFiles += 1;
      this.serial.switchTo(next);
    })()
      .catch(() => {}) // the process ended meanwhile, or QEMU refused: the next check tries again
      .finally(() => {
        this.rotating = undefined;
      });
    return this.rotating;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitError === undefined;
  }

  static async spawn(options: QemuSpawn): Promise<QemuProcess> {
    const { dir } = options;
    mkdirSync(dir, { recursive: true });
    const qmpPath = join(dir, 'qmp.sock');
    const serialPath = join(dir, 'serial.log');
    rmSync(qmpPath, { force: true });
    rmSync(serialPath, { force: true });
    const listener = await listenQmp(qmpPath);
    const args = [
      '-nodefaults',
      '-no-user-config',
      '-machine',
      `pc,accel=${options.accel}`,
      '-m',
      String(options.memMiB),
      '-display',
      'none',
      // the serial port's only output is the log file: a `null` backend never refuses a byte (a
      // pipe to this process would, while its event loop stalls, and QEMU then logs the byte twice)
      '-chardev',
      `null,id=ser0,logfile=${serialPath},logappend=off`,
      '-serial',
      'chardev:ser0',
      '-chardev',
      `socket,id=qmp,path=${qmpPath}`,
      '-mon',
      'chardev=qmp,mode=control',
      ...(options.floppy ? ['-drive', `file=${options.floppy},format=raw,if=floppy,readonly=on`] : []),
      ...(options.disk
        ? [
            '-drive',
            `file=${options.disk.path},format=${options.disk.format},if=virtio,${options.disk.readonly ? 'readonly=on' : 'cache=writeback'}`,
          ]
        : []),
      ...(options.kernel ? kernelArgs(options.kernel) : []),
      ...(options.paused || options.incoming ? ['-S'] : []),
      ...(options.incoming ? ['-incoming', 'defer'] : []),
    ];
    // A QEMU process must not outlive its agent (a VM runs on at most one node): where util-linux's
    // setpriv exists, the kernel kills QEMU when the agent process dies, even by SIGKILL.
    const [command, argv] = SETPRIV
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', options.binary, ...args]]
      : [options.binary, args];
    const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (s: string) => {
      stderr = (stderr + s).slice(-4096);
    });
    const serial = new SerialLog(serialPath, options.serial);
    const exited = new Promise<Error>((resolve) => {
      child.once('error', (e) => resolve(e));
      child.once('exit', (code, signal) =>
        resolve(new Error(`QEMU exited (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`)),
      );
    });
    try {
      const qmp = await listener.connected(options.startTimeoutMs ?? 10_000, exited);
      // events for MIGRATION status changes; set on both ends of every stream
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'events', state: true }],
      });
      return new QemuProcess(child, qmp, options, serial, exited, () => stderr);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    } finally {
      listener.server.close();
    }
  }

  /** Stops the vCPUs (QMP `stop`); the process and its state stay. */
  async pause(): Promise<void> {
    await this.qmp.execute('stop');
  }

  /** Runs the vCPUs again (QMP `cont`). */
  async resume(): Promise<void> {
    await this.qmp.execute('cont');
  }

  async status(): Promise<{ running: boolean; status: string }> {
    return this.qmp.execute('query-status');
  }

  /** CPU, memory and disk counters of this VM so far. */
  async sample(): Promise<ProcessSample> {
    const { cpuNanos, residentBytes } = procSample(this.pid);
    const devices = await this.qmp.execute<{ stats: Record<string, number> }[]>('query-blockstats');
    let ioOps = 0;
    let ioBytes = 0;
    for (const { stats } of devices) {
      ioOps += (stats.rd_operations ?? 0) + (stats.wr_operations ?? 0) + (stats.flush_operations ?? 0);
      ioBytes += (stats.rd_bytes ?? 0) + (stats.wr_bytes ?? 0);
    }
    return { cpuNanos, residentBytes, ioOps, ioBytes };
  }

  /**
   * Sends the VM's state with QEMU's migration to `sink`, chunk by chunk as QEMU produces it, and
   * waits for it to complete. A running VM is migrated live; either way it is stopped at the end
   * (QEMU's `postmigrate`). `sink` must consume every chunk; when it throws, the migration fails.
   */
  async migrateOut(
    sink: (chunk: Buffer) => Promise<void> | void,
    options: { timeoutMs?: number; downtimeLimitMs?: number } = {},
  ): Promise<MigrationStats> {
    const migration = await this.startMigration(sink, options);
    await migration.switchover;
    return migration.complete();
  }

  /**
   * Starts QEMU's migration into `sink`. `switchover` resolves after the pre-copy rounds, when QEMU
   * has stopped the guest but not yet sent its device state and last dirty pages (QEMU's
   * `pause-before-switchover`); then `complete` sends the rest, or `cancel` gives up and QEMU runs
   * the guest again if it was running.
   */
  async startMigration(
    sink: (chunk: Buffer) => Promise<void> | void,
    { timeoutMs = 60_000, downtimeLimitMs }: { timeoutMs?: number; downtimeLimitMs?: number } = {},
  ): Promise<OutgoingMigration> {
    const endpoint = await this.streamEndpoint();
    try {
      if (downtimeLimitMs !== undefined)
        await this.qmp.execute('migrate-set-parameters', { 'downtime-limit': downtimeLimitMs });
      await this.qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'pause-before-switchover', state: true }],
      });
      const { running } = await this.status();
      const events = this.migrationEvents(timeoutMs);
      await this.qmp.execute('migrate', { uri: `unix:${endpoint.path}` });
      const [socket] = await endpoint.connection;
      const stream = this.drainInto(socket, sink);
      return this.outgoing({ running, events, stream, cleanup: endpoint.cleanup });
    } catch (error) {
      endpoint.cleanup();
      throw error;
    }
  }

  /** A Unix socket QEMU's outgoing stream connects to once; `cleanup` closes and removes it. */
  private async streamEndpoint() {
    const path = join(this.options.dir, `out-${++this.migrations}.sock`);
    rmSync(path, { force: true });
    const server = createServer();
    server.maxConnections = 1;
    const connection = once(server, 'connection') as Promise<[Socket]>;
    connection.catch(() => {});
    server.listen(path);
    await once(server, 'listening');
    const cleanup = () => {
      this.endpoints.delete(cleanup);
      server.close();
      rmSync(path, { force: true });
    };
    this.endpoints.add(cleanup);
    return { path, connection, cleanup };
  }

  /** QEMU's MIGRATION events from now on: the stop before the switchover, and the end. */
  private migrationEvents(timeoutMs: number): MigrationEvents {
    const mark = this.qmp.events.length;
    const status = (...wanted: string[]) =>
      this.qmp.waitEvent('MIGRATION', {
        timeoutMs,
        since: mark,
        match: (e) => wanted.includes(String(e.data?.status)),
      });
    const paused = status('pre-switchover', 'failed', 'cancelled');
    const finished = status('completed', 'failed', 'cancelled');
    paused.catch(() => {});
    finished.catch(() => {});
    return { paused, finished };
  }

  /** Feeds the stream from `socket` to `sink`; a sink that throws cancels the migration. */
  private drainInto(socket: Socket, sink: (chunk: Buffer) => Promise<void> | void) {
    let bytes = 0;
    const drained = (async () => {
      for await (const chunk of socket as AsyncIterable<Buffer>) {
        bytes += chunk.byteLength;
        await sink(chunk);
      }
    })();
    drained.catch(() => this.qmp.execute('migrate_cancel').catch(() => {}));
    return { drained, bytes: () => bytes };
  }

  /** The handle on a started migration: its switchover, then complete or cancel. */
  private outgoing({
    running,
    events: { paused, finished },
    stream: { drained, bytes },
    cleanup,
  }: {
    running: boolean;
    events: MigrationEvents;
    stream: ReturnType<QemuProcess['drainInto']>;
    cleanup: () => void;
  }): OutgoingMigration {
    const died = this.exited.then((e) => Promise.reject(e));
    died.catch(() => {});
    const failed = async (event: { data?: Record<string, unknown> }) => {
      const info = await this.qmp.execute<{ 'error-desc'?: string }>('query-migrate').catch(() => undefined);
      await drained.catch(() => {});
      cleanup();
      return new Error(
        `migration ${event.data?.status}${info?.['error-desc'] ? `: ${info['error-desc']}` : ''}`,
      );
    };
    const switchover = (async () => {
      const event = await Promise.race([paused, died, drained.then(() => paused)]);
      if (event.data?.status !== 'pre-switchover') throw await failed(event);
      const before = await this.qmp.execute<{ ram?: { transferred?: number } }>('query-migrate');
      return { precopyBytes: running ? (before.ram?.transferred ?? 0) : 0 };
    })();
    switchover.catch(() => {});
    return {
      switchover,
      complete: async () => {
        try {
          const { precopyBytes } = await switchover;
          await this.qmp.execute('migrate-continue', { state: 'pre-switchover' });
          const event = await Promise.race([finished, died]);
          if (event.data?.status !== 'completed') throw await failed(event);
          await drained;
          return { ...(await this.completedStats()), bytes: bytes(), precopyBytes };
        } finally {
          cleanup();
        }
      },
      cancel: async () => {
        await this.qmp.execute('migrate_cancel').catch(() => {});
        await Promise.race([finished, died]).catch(() => {});
        await drained.catch(() => {});
        cleanup();
      },
    };
  }

  /** QEMU's figures for the migration that just completed (QMP query-migrate). */
  private async completedStats(): Promise<Omit<MigrationStats, 'bytes' | 'precopyBytes'>> {
    const info = await this.qmp.execute<{
      'total-time'?: number;
      downtime?: number;
      ram?: { transferred?: number; 'dirty-sync-count'?: number };
    }>('query-migrate');
    return {
      ramBytes: info.ram?.transferred ?? 0,
      rounds: info.ram?.['dirty-sync-count'] ?? 0,
      downtimeMs: info.downtime ?? 0,
      totalMs: info['total-time'] ?? 0,
    };
  }

  /**
   * Loads a migration stream into this process (spawned with `incoming`); the VM stays paused
   * (`-S`) until `resume`. Resolves once QEMU reports the stream complete.
   */
  async migrateIn(source: AsyncIterable<Uint8Array>, { timeoutMs = 60_000 } = {}): Promise<void> {
    const path = join(this.options.dir, 'in.sock');
    rmSync(path, { force: true });
    const mark = this.qmp.events.length;
    const finished = this.qmp.waitEvent('MIGRATION', {
      timeoutMs,
      since: mark,
      match: (e) => ['completed', 'failed', 'cancelled'].includes(String(e.data?.status)),
    });
    await this.qmp.execute('migrate-incoming', { uri: `unix:${path}` });
    const socket = createConnection(path);
    // QEMU closing its end early (a stream it refuses, a crash) is reported by QMP or `exited`
    socket.on('error', () => {});
    await once(socket, 'connect');
    const pumped = (async () => {
      try {
        for await (const chunk of source) {
          if (!socket.write(chunk)) await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
        }
      } finally {
        socket.end();
      }
    })();
    pumped.catch(() => socket.destroy());
    const event = await Promise.race([finished, this.exited.then((e) => Promise.reject(e))]);
    await pumped;
    if (event.data?.status !== 'completed') throw new Error(`incoming migration ${event.data?.status}`);
  }

  /**
   * Ends the process: QMP `quit`, then SIGKILL if it has not exited within `graceMs`. Reads the
   * serial log to its end first, so `serial.current` is the guest's exact output.
   */
  async quit(graceMs = 5_000): Promise<void> {
    if (this.alive) {
      await this.qmp.execute('quit').catch(() => {});
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    this.serial.sync();
    this.qmp.close();
  }

  /** Kills the process at once (self-fencing, crash tests); nothing is saved. */
  async kill(): Promise<void> {
    clearInterval(this.serialCheck);
    if (this.alive) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    this.qmp.close();
  }

  /** Removes the process's directory (after quit or kill). */
  dispose() {
    rmSync(this.options.dir, { recursive: true, force: true });
  }

  stderrTail(): string {
    return this.stderr();
  }
}

/** QEMU's direct Linux boot: the kernel, its initrd and command line. */
function kernelArgs(kernel: NonNullable<QemuSpawn['kernel']>): string[] {
  return [
    '-kernel',
    kernel.path,
    ...(kernel.initrd ? ['-initrd', kernel.initrd] : []),
    ...(kernel.append !== undefined ? ['-append', kernel.append] : []),
  ];
}
