import { loadavg } from 'node:os';
import { createAgent } from '../../node-agent/agent/agent.ts';
import { runAgent } from '../../node-agent/agent/run.ts';
import { createKernel } from '../../node-agent/kernel/index.ts';
import { DEFAULT_TIMINGS, orderDeadline } from '../../shared/domain/protocol.ts';
import { startScratchStores } from '../../shared/local/stores.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { getMigration, type MigrationRecord } from '../../shared/storage/migrations.ts';
import { createVm, findVm, orderMigration, type VmRecord } from '../../shared/storage/vms.ts';

export const name = 'migration';

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} };
const REPORT_MS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(10);
  }
  throw new Error('timed out');
}

const GUESTS = [
  { label: 'hot', guest: { kind: 'memory', params: { wsPages: 64, rate: 200_000 } }, memPages: 66 },
  { label: 'cool', guest: { kind: 'memory', params: { wsPages: 16, rate: 2_000 } }, memPages: 256 },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const { clients, close } = await startScratchStores('bench-migration');
  const images = createImageStore(clients);
  const nodes = ['bench-a', 'bench-b'];
  const loops = [];
  for (const id of nodes) {
    const spec = { id, capacity: 40_000_000, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 8192 };
    const kernel = createKernel(
      { nodeId: id, capacity: spec.capacity, weights: spec.weights, tickMs: 20, clock: Date.now },
      { images },
    );
    const agent = createAgent(
      { clients, kernel, clock: Date.now, log: quiet, images },
      {
        node: spec,
        lease: { leaseMs: 5000, fenceMarginMs: 1000 },
        checkpointMs: 60_000,
        cooldownMs: 0,
        timings: DEFAULT_TIMINGS,
      },
    );
    await agent.register();
    loops.push(runAgent(agent, { tickMs: 20, reportMs: REPORT_MS, reconcileMs: 100 }, quiet));
  }
  const moves = ctx.quick ? 2 : 6;
  const figures: Record<string, unknown> = {
    movesPerGuest: moves,
    loadavg1: Math.round(loadavg()[0]! * 10) / 10,
  };
  try {
    for (const { label, guest, memPages } of GUESTS) {
      const id = `bench-${label}`;
      await createVm(clients, { id, owner: nodes[0]!, guest, memPages }, Date.now());
      let vm = await until(async () => {
        const v = await findVm(clients, id);
        return v?.state === 'RUNNING' ? v : undefined;
      });
      const records: MigrationRecord[] = [];
      for (let i = 0; i < moves; i += 1) {
        // Past one report period, so the source has measured the guest's paging since it arrived.
        await sleep(REPORT_MS + 100);
        const from = vm.owner;
        const to = nodes.find((n) => n !== from)!;
        const now = Date.now();
        const order = {
          id: `${id}-${i}`,
          from,
          to,
          phase: 'ORDERED' as const,
          deadline: orderDeadline(now, memPages),
          orderedAt: now,
          origin: 'bench',
        };
        await orderMigration(clients, id, vm.fence, order);
        vm = await until<VmRecord>(async () => {
          const v = await findVm(clients, id);
          return v?.owner === to && v.state === 'RUNNING' && !v.migration ? v : undefined;
        });
        records.push(await until(() => getMigration(clients, order.id)));
      }
      const out = {
        memMiB: Math.round((memPages * 64) / 1024),
        precopyKiB: Math.round(median(records.map((r) => r.bytes?.precopy ?? 0)) / 1024),
        finalDeltaKiB: Math.round(median(records.map((r) => r.bytes?.final ?? 0)) / 1024),
        downtimeMsP50: median(records.map((r) => r.downtimeMs ?? 0)),
        downtimeMsMax: Math.max(...records.map((r) => r.downtimeMs ?? 0)),
        totalMsP50: median(records.map((r) => r.totalMs)),
      };
      ctx.log(
        `${label} guest (${out.memMiB} MiB): pre-copy ${out.precopyKiB} KiB, final delta ${out.finalDeltaKiB} KiB, downtime p50 ${out.downtimeMsP50} ms (max ${out.downtimeMsMax}), total p50 ${out.totalMsP50} ms`,
      );
      figures[label] = out;
    }
  } finally {
    await Promise.all(loops.map((l) => l.stop()));
    clients.dynamo.destroy();
    clients.s3.destroy();
    await close();
  }
  return figures;
}
