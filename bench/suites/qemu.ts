// Real x86 VMs under QEMU (TCG here; KVM where the node has it): the counter guest migrated back
// and forth between two qemu drivers through s3rver. Per move: bytes of QEMU's stream (pre-copy
// and final part), pre-copy rounds and downtime as QEMU measured them, and the time from `migrate`
// to the guest running on the target. Also a suspend's state size and an idle VM's host CPU.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_QEMU_BINARY, detectAccel, qemuVersion } from '../../node-agent/drivers/qemu/accel.ts';
import { expectedOutput } from '../../node-agent/drivers/qemu/counter-image.ts';
import { type QemuCheckpoint, QemuDriver } from '../../node-agent/drivers/qemu/driver.ts';
import { emptySerial, foldSerial, serialDigest } from '../../node-agent/drivers/qemu/serial.ts';
import { ensureTableAndBucket, LOCAL_CREDENTIALS, startLocalStores } from '../../shared/local/stores.ts';
import { createClients } from '../../shared/storage/clients.ts';
import { s3Blobs } from '../../shared/storage/image-store.ts';

export const name = 'qemu';

const GUESTS = [
  // 50 timer ticks a second, one dirtied page each: an idle machine
  { label: 'idle16', hz: 50, memMiB: 16 },
  // 1000 ticks a second in 256 MiB: more to send, and pages dirtied during pre-copy
  { label: 'busy256', hz: 1000, memMiB: 256 },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const kib = (n: number) => Math.round(n / 1024);

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const version = qemuVersion(DEFAULT_QEMU_BINARY);
  if (!version) {
    ctx.log(`${DEFAULT_QEMU_BINARY} not found: install qemu-system-x86 to run this suite`);
    return { skipped: `${DEFAULT_QEMU_BINARY} not found` };
  }
  const { accel, why } = await detectAccel(DEFAULT_QEMU_BINARY);
  ctx.log(`${version}; accelerator ${accel} (${why})`);
  const bench = await twoQemuNodes(accel);
  const moves = ctx.quick ? 3 : 10;
  const figures: Record<string, unknown> = {
    accel,
    movesPerGuest: moves,
    loadavg1: Math.round(loadavg()[0]! * 10) / 10,
  };
  try {
    for (const guest of GUESTS) {
      const out = await benchGuest(bench.nodes, guest, moves);
      ctx.log(
        `${guest.label} (${out.memMiB} MiB, ${out.hz} Hz): stream ${out.streamKiBP50} KiB (pre-copy ${out.precopyKiBP50}, final ${out.finalKiBP50}), ${out.roundsP50} rounds, downtime p50 ${out.downtimeMsP50} ms (max ${out.downtimeMsMax}), move p50 ${out.moveMsP50} ms, suspend ${out.suspendKiB} KiB, idle CPU ${out.idleHostCpuCores} cores`,
      );
      figures[guest.label] = out;
    }
  } finally {
    await bench.close();
  }
  return figures;
}

/** Two qemu drivers sharing one image store on local s3rver, in a scratch directory. */
async function twoQemuNodes(accel: 'kvm' | 'tcg') {
  const scratch = mkdtempSync(join(tmpdir(), 'seesaw-bench-qemu-'));
  const stores = await startLocalStores({ scratchDir: join(scratch, 's3') });
  const clients = createClients({
    tableName: 'bench-qemu',
    bucketName: 'bench-qemu',
    region: 'us-east-1',
    dynamoEndpoint: stores.dynamoEndpoint,
    s3Endpoint: stores.s3Endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const closeStores = async () => {
    clients.dynamo.destroy();
    clients.s3.destroy();
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  };
  await ensureTableAndBucket(clients).catch(async (error) => {
    await closeStores();
    throw error;
  });
  const blobs = s3Blobs(clients);
  const nodes = ['a', 'b'].map(
    (nodeId) =>
      new QemuDriver({
        nodeId,
        binary: DEFAULT_QEMU_BINARY,
        workDir: join(scratch, nodeId),
        accel,
        blobs,
        weights: { cpu: 1, io: 1, mem: 1 },
        clock: Date.now,
      }),
  );
  return {
    nodes,
    async close() {
      // The stores close even when stopping a QEMU process fails, or they would hold the bench open.
      try {
        await Promise.all(nodes.map((d) => d.stopAll()));
      } finally {
        await closeStores();
      }
    },
  };
}

type Save = QemuCheckpoint & { runningMs: number };

/** One guest: boot, its idle host CPU, `moves` migrations back and forth, a suspend; its figures. */
async function benchGuest(
  nodes: QemuDriver[],
  { label, hz, memMiB }: (typeof GUESTS)[number],
  moves: number,
) {
  const id = `bench-${label}`;
  const vm = { id, guest: { kind: 'qemu:counter', params: { hz } }, memPages: memMiB * 16 };
  await nodes[0]!.start({ ...vm, fence: 1 });
  await nodes[0]!.processOf(id).serial.wait((s) => s.lines >= 5, 30_000);
  const idle = await idleCpu(nodes[0]!);
  const saves: Save[] = [];
  for (let i = 0; i < moves; i++) saves.push(await move(vm, nodes[i % 2]!, nodes[(i + 1) % 2]!, i + 2));
  const owner = nodes[moves % 2]!;
  await owner.pause(id);
  const suspended = await owner.checkpoint(id);
  await owner.stop(id);
  return {
    memMiB,
    hz,
    streamKiBP50: kib(median(saves.map((s) => s.migration.bytes))),
    precopyKiBP50: kib(median(saves.map((s) => s.migration.precopyBytes))),
    finalKiBP50: kib(median(saves.map((s) => s.migration.bytes - s.migration.precopyBytes))),
    roundsP50: median(saves.map((s) => s.migration.rounds)),
    downtimeMsP50: median(saves.map((s) => s.migration.downtimeMs)),
    downtimeMsMax: Math.max(...saves.map((s) => s.migration.downtimeMs)),
    qemuTotalMsP50: median(saves.map((s) => s.migration.totalMs)),
    moveMsP50: Math.round(median(saves.map((s) => s.runningMs))),
    suspendKiB: kib(suspended.bytes),
    idleHostCpuCores: Math.round(idle * 1000) / 1000,
  };
}

/** An idle VM's cost to its host: CPU of its QEMU process over one second, in cores. */
async function idleCpu(node: QemuDriver): Promise<number> {
  await node.measure();
  await new Promise((r) => setTimeout(r, 1000));
  const [idle] = await node.measure();
  return idle?.factors.cpu ?? Number.NaN;
}

/** One migration with QEMU's pre-copy; checks the counter goes on at the line after the last one. */
async function move(
  vm: { id: string; guest: { kind: string; params: { hz: number } }; memPages: number },
  source: QemuDriver,
  target: QemuDriver,
  fence: number,
): Promise<Save> {
  const { id } = vm;
  const t0 = performance.now();
  await source.precopy(id);
  const final = await source.finalState(id);
  const stoppedAt = source.processOf(id).serial.sync().lines;
  await source.stop(id);
  await target.start({ ...vm, fence, image: final.image });
  const runningMs = performance.now() - t0;
  // The guest may have stopped mid-line (often, at 1000 Hz): the target's output then starts with
  // the line's end, so compare the digest of all its lines, carried over, with the counter's.
  const state = await target.processOf(id).serial.wait((s) => s.lines >= stoppedAt + 1, 30_000);
  const expected = serialDigest(foldSerial(emptySerial(), expectedOutput(1, state.lines)));
  if (serialDigest(state) !== expected)
    throw new Error(
      `after move to fence ${fence} the guest's output is not the counter's: ${serialDigest(state)}, not ${expected}`,
    );
  return { ...final, runningMs };
}
