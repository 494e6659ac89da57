// One real QEMU process per VM, under TCG: the counter guest boots, is measured, paused and
// resumed over QMP, and its state moves through QEMU's migration stream into another process.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { leftOpen, openResources } from '../../bench/handles.ts';
import { counterFloppy, expectedOutput, parseLine } from '../../node-agent/drivers/qemu/counter-image.ts';
import { emptySerial, foldSerial } from '../../node-agent/drivers/qemu/serial.ts';
import { QEMU, qemuScratch } from './support.ts';

const WAIT = 15_000;
const counterOf = (line: string) => parseLine(line)!.counter;

describe('a QEMU process running the counter guest', () => {
  const scratch = qemuScratch();
  /** A source that printed `lines` lines, then streamed its state out: the stream's chunks and stats. */
  const migratedOut = async (lines: number) => {
    const source = await scratch.spawn();
    await source.serial.wait((s) => s.lines >= lines, WAIT);
    const chunks: Buffer[] = [];
    const stats = await source.migrateOut((c) => {
      chunks.push(c);
    });
    return { source, chunks, stats };
  };

  it('boots and prints the counter sequence, one line per timer tick', async () => {
    const vm = await scratch.spawn();
    const state = await vm.serial.wait((s) => s.lines >= 5, WAIT);
    expect(vm.serial.tail.startsWith(expectedOutput(1, 5))).toBe(true);
    expect(state.chain).toBe(foldSerial(emptySerial(), expectedOutput(1, state.lines)).chain);
  });

  it('rotates the serial log of a guest that prints a lot: the log on disk stays small, no line is lost', async () => {
    const floppy = join(scratch.dir, 'counter-1000hz.img');
    writeFileSync(floppy, counterFloppy(1000));
    const vm = await scratch.spawn({ floppy, serialLogBytes: 4096 });
    const state = await vm.serial.wait((s) => s.lines >= 2000, WAIT); // 36 kB of output
    expect(vm.serialRotations).toBeGreaterThanOrEqual(3);
    // A rotation in flight holds the old file and the new one for a moment (seen in CI beside another
    // test file): list the files once one has just finished, before the next check can start another.
    await vm.rotateSerial();
    const logs = readdirSync(vm.options.dir).filter((f) => f.startsWith('serial'));
    expect(logs).toHaveLength(1);
    expect(statSync(join(vm.options.dir, logs[0]!)).size).toBeLessThan(16 * 1024);
    // every line of every rotated file went into the chain, in order, once
    expect(state.chain).toBe(foldSerial(emptySerial(), expectedOutput(1, state.lines)).chain);
  });

  it('repeats and loses no byte while the agent process reads nothing for a second', async () => {
    // The seed-10 flake of test/qemu/faults.test.ts: on a loaded machine the agent's event loop
    // stalled, QEMU could not write the guest's next byte to a reader in this process, and its log
    // got that byte twice. A 1000 Hz guest prints 18 kB/s; the thread is blocked below, as a
    // starved or collecting Node process is, and the guest's output must not depend on it.
    const floppy = join(scratch.dir, 'counter-1000hz-stall.img');
    writeFileSync(floppy, counterFloppy(1000));
    const vm = await scratch.spawn({ floppy });
    const before = await vm.serial.wait((s) => s.lines >= 20, WAIT);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1000);
    const after = await vm.serial.wait((s) => s.lines >= before.lines + 1200, WAIT);
    expect(after.chain).toBe(foldSerial(emptySerial(), expectedOutput(1, after.lines)).chain);
  });

  it('is measured from /proc and QMP: CPU time and resident memory of its own process', async () => {
    const vm = await scratch.spawn();
    await vm.serial.wait((s) => s.lines >= 2, WAIT);
    const sample = await vm.sample();
    expect(sample.cpuNanos).toBeGreaterThan(0);
    expect(sample.residentBytes).toBeGreaterThan(16 * 2 ** 20); // the guest's 16 MiB is touched at boot
    expect(sample.ioOps).toBeGreaterThanOrEqual(0);
  });

  it('stops and continues its vCPU over QMP', async () => {
    const vm = await scratch.spawn();
    await vm.serial.wait((s) => s.lines >= 2, WAIT);
    await vm.pause();
    expect(await vm.status()).toMatchObject({ running: false, status: 'paused' });
    const at = vm.serial.sync().lines;
    await vm.resume();
    expect((await vm.status()).running).toBe(true);
    await vm.serial.wait((s) => s.lines >= at + 2, WAIT);
  });

  it('moves its state through the migration stream to a new process, where the counter goes on', async () => {
    const { source, chunks, stats } = await migratedOut(5);
    expect((await source.status()).running).toBe(false);
    const stopped = source.serial.sync();
    expect(stats.bytes).toBe(chunks.reduce((n, c) => n + c.byteLength, 0));
    expect(stats.ramBytes).toBeGreaterThan(0);
    expect(stats.rounds).toBeGreaterThanOrEqual(1);
    expect(stats.precopyBytes).toBeGreaterThan(0); // it ran during the first round
    expect(stats.precopyBytes).toBeLessThanOrEqual(stats.bytes);
    await source.quit();

    const target = await scratch.spawn({ incoming: true, serial: stopped });
    await target.migrateIn(
      (async function* () {
        yield* chunks;
      })(),
    );
    expect(await target.status()).toMatchObject({ running: false });
    await target.resume();
    const after = await target.serial.wait((s) => s.lines >= stopped.lines + 3, WAIT);
    // the target's first line is the one after the source's last: nothing lost, nothing repeated
    expect(target.serial.tail.startsWith(expectedOutput(stopped.lines + 1, stopped.lines + 3))).toBe(true);
    expect(counterOf(after.last)).toBe(after.lines);
    expect(after.chain).toBe(foldSerial(emptySerial(), expectedOutput(1, after.lines)).chain);
  });

  it('closes the socket of a migration out when the process ends before the migration does', async () => {
    // A VM stopped after its pre-copy (the migration given up by a stop, not a cancel): the
    // listening stream socket must go with the process, or it holds the agent (and `npm run bench`)
    // open for good.
    const before = openResources();
    const vm = await scratch.spawn();
    await vm.serial.wait((s) => s.lines >= 2, WAIT);
    const migration = await vm.startMigration(() => {});
    await migration.switchover;
    expect(readdirSync(vm.options.dir)).toContain('out-1.sock');
    await vm.kill();
    expect(await leftOpen(before)).toEqual([]);
    expect(readdirSync(vm.options.dir)).not.toContain('out-1.sock');
  });

  it('fails the load, instead of hanging, when the target process dies during it', async () => {
    const { chunks } = await migratedOut(1);
    const target = await scratch.spawn({ incoming: true });
    const load = target.migrateIn(
      (async function* () {
        yield chunks[0]!.subarray(0, 1024);
        await target.kill();
        yield chunks[0]!.subarray(1024);
      })(),
    );
    await expect(load).rejects.toThrow();
  });

  it('rejects a stream that is cut short, and the process does not run', async () => {
    const { chunks } = await migratedOut(1);
    const whole = Buffer.concat(chunks);
    const target = await scratch.spawn({ incoming: true });
    await expect(
      target.migrateIn(
        (async function* () {
          yield whole.subarray(0, whole.byteLength >> 1);
        })(),
      ),
    ).rejects.toThrow();
    expect(target.serial.sync().lines).toBe(0);
  });

  it('dies with the agent process that started it, even when that is killed outright', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-qemu-orphan-'));
    try {
      // an "agent": a process that starts one QEMU, prints its pid and waits to be killed
      const module = join(import.meta.dirname, '../../node-agent/drivers/qemu/process.ts');
      const script = `
        const { QemuProcess } = await import(${JSON.stringify(module)});
        const vm = await QemuProcess.spawn({
          binary: ${JSON.stringify(QEMU)}, dir: ${JSON.stringify(join(dir, 'vm'))}, accel: 'tcg', memMiB: 16,
          floppy: ${JSON.stringify(scratch.floppy)},
        });
        process.stdout.write(vm.pid + '\\n');
        setInterval(() => {}, 1000);`;
      const agent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const [line] = (await once(agent.stdout!, 'data')) as [Buffer];
      const pid = Number(line.toString().trim());
      expect(() => process.kill(pid, 0)).not.toThrow(); // QEMU runs
      agent.kill('SIGKILL');
      await once(agent, 'exit');
      const end = Date.now() + WAIT;
      let alive = true;
      while (alive && Date.now() < end) {
        try {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 20));
        } catch {
          alive = false;
        }
      }
      expect(alive).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
