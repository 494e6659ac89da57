// Live migration between two agents (real clock, real kernels, dynalite + s3rver started here):
// bytes written by pre-copy and by the final delta, downtime (guest stopped on the source → its
// first tick on the target) and total time, for a hot guest that dirties its whole working set
// every tick and a cool one whose small working set sits in a larger memory; and where each
// downtime went, from the two agents' logs: the source's encode, upload (none when the final delta
// travels in the hand-over item) and item write, the target's notice of IMAGE_READY, its download
// (none from the item) and apply, the take and the first tick.
import { loadavg } from 'node:os';
import { createAgent } from '../../node-agent/agent/agent.ts';
import { type RunningAgent, runAgent } from '../../node-agent/agent/run.ts';
import { createKernel } from '../../node-agent/kernel/index.ts';
import { DEFAULT_TIMINGS, orderDeadline } from '../../shared/domain/protocol.ts';
import { startScratchStores } from '../../shared/local/stores.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { getMigration, type MigrationRecord } from '../../shared/storage/migrations.ts';
import { createVm, findVm, type GuestSpec, orderMigration, type VmRecord } from '../../shared/storage/vms.ts';

export const name = 'migration';

const quiet = { info: () => {}, warn: () => {}, debug: () => {}, error: () => {} };

/** The phase fields the agents log at the hand-over ('image handed over', 'migrated in'), by migration id. */
type Phases = Record<string, number | string | boolean | undefined>;
function phaseLog() {
  const source = new Map<string, Phases>();
  const target = new Map<string, Phases>();
  const decisions = new Map<string, Decision>();
  const log = {
    ...quiet,
    debug(obj: object, msg?: string) {
      const o = obj as Decision & { migration?: string };
      if (msg?.startsWith('pre-copy done') && o.migration) decisions.set(o.migration, o);
    },
    info(obj: object, msg?: string) {
      const o = obj as { migration?: string; phases?: Phases };
      if (!o.migration || !o.phases) return;
      if (msg === 'image handed over') source.set(o.migration, o.phases);
      if (msg === 'migrated in') target.set(o.migration, o.phases);
    },
  };
  return { log, source, target, decisions };
}

/** The source's pre-copy decision (see precopyAndAnnounce): the rounds, why it stopped, on what paging. */
interface Decision {
  rounds: number;
  why: string;
  precopyBytes: number;
  seen?: { dirtiedPages: number; residentPages: number };
}

/** One line per move: rounds, why the pre-copy stopped, KiB pre-copied, the last report's paging, final delta, downtime. */
function decisionsOf(records: MigrationRecord[], phases: PhaseLog) {
  return records
    .map((r) => {
      const d = phases.decisions.get(r.id);
      if (!d) return `${r.id}: ?`;
      const seen = d.seen ? `${d.seen.dirtiedPages}/${d.seen.residentPages} pages dirtied` : 'no report';
      const final = Math.round((r.bytes?.final ?? 0) / 1024);
      return `${d.rounds} rounds (${d.why}, ${Math.round(d.precopyBytes / 1024)} KiB; ${seen}), final ${final} KiB, down ${r.downtimeMs} ms`;
    })
    .join('; ');
}

/** One migration's downtime, phase by phase (ms); the phases before `take` follow one another. */
function breakdownOf(s: Phases | undefined, t: Phases | undefined) {
  const n = (v: unknown) => (typeof v === 'number' ? v : Number.NaN);
  if (!s || !t) return undefined;
  return {
    encodeMs: n(s.encodeMs),
    uploadMs: n(s.uploadMs),
    itemWriteMs: n(s.itemWriteMs),
    noticeMs: n(t.enteredAt) - n(s.readyAt),
    downloadMs: n(t.downloadMs),
    applyMs: n(t.applyMs),
    takeMs: n(t.takeMs),
    firstTickMs: n(t.firstTickMs),
    applied: t.path === 'apply' ? 1 : 0,
    inlined: t.inline === true ? 1 : 0,
  };
}
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

const GUESTS: { label: string; guest: GuestSpec; memPages: number }[] = [
  { label: 'hot', guest: { kind: 'memory', params: { wsPages: 64, rate: 200_000 } }, memPages: 66 },
  // 16 MiB resident (zero pages are neither imaged nor copied), of which it keeps writing 1 MiB.
  {
    label: 'cool',
    guest: { kind: 'memory', params: { wsPages: 16, rate: 2_000, residentPages: 256 } },
    memPages: 256,
  },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

type PhaseLog = ReturnType<typeof phaseLog>;
type Clients = Awaited<ReturnType<typeof startScratchStores>>['clients'];

/** Two agents on their own kernels, running on the scratch stores; their loops go into `loops`, to stop. */
async function startAgents(
  clients: Clients,
  images: ReturnType<typeof createImageStore>,
  phases: PhaseLog,
  loops: RunningAgent[],
) {
  for (const id of NODES) {
    const spec = { id, capacity: 40_000_000, weights: { cpu: 1, io: 0.2, mem: 0.1 }, memCapacityPages: 8192 };
    const kernel = createKernel(
      { nodeId: id, capacity: spec.capacity, weights: spec.weights, tickMs: 20, clock: Date.now },
      { images },
    );
    const agent = createAgent(
      { clients, kernel, clock: Date.now, log: phases.log, images },
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
}

const NODES = ['bench-a', 'bench-b'];

/** Moves one guest back and forth `moves` times; the migration records. */
async function moveBackAndForth(
  clients: Clients,
  { label, guest, memPages }: (typeof GUESTS)[number],
  moves: number,
) {
  const id = `bench-${label}`;
  await createVm(clients, { id, owner: NODES[0]!, guest, memPages }, Date.now());
  let vm = await until(async () => {
    const v = await findVm(clients, id);
    return v?.state === 'RUNNING' ? v : undefined;
  });
  const records: MigrationRecord[] = [];
  for (let i = 0; i < moves; i += 1) {
    // Past one report period, so the source has measured the guest's paging since it arrived.
    await sleep(REPORT_MS + 100);
    const from = vm.owner;
    const to = NODES.find((n) => n !== from)!;
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
  return records;
}

/** Each downtime phase's median over the moves the agents logged, and how many took the apply path. */
function breakdownP50(records: MigrationRecord[], phases: PhaseLog) {
  const parts = records.flatMap((r) => {
    const b = breakdownOf(phases.source.get(r.id), phases.target.get(r.id));
    return b ? [b] : [];
  });
  const p50 = (k: keyof NonNullable<ReturnType<typeof breakdownOf>>) =>
    Math.round(median(parts.map((b) => b[k]).filter((v) => !Number.isNaN(v))) * 10) / 10;
  return {
    encodeMs: p50('encodeMs'),
    uploadMs: p50('uploadMs'),
    itemWriteMs: p50('itemWriteMs'),
    noticeMs: p50('noticeMs'),
    downloadMs: p50('downloadMs'),
    applyMs: p50('applyMs'),
    takeMs: p50('takeMs'),
    firstTickMs: p50('firstTickMs'),
    applied: parts.filter((b) => b.applied).length,
    /** Moves whose final delta travelled in the hand-over item and was applied from it (no S3 round trip). */
    inlined: parts.filter((b) => b.inlined).length,
  };
}

/** The stable figures of one guest (bench keys other tools read) and the breakdown beside them. */
function figuresOf(memPages: number, records: MigrationRecord[], phases: PhaseLog) {
  return {
    memMiB: Math.round((memPages * 64) / 1024),
    precopyKiB: Math.round(median(records.map((r) => r.bytes?.precopy ?? 0)) / 1024),
    // The first move of a VM pre-copies all it holds; later ones only what changed since.
    precopyKiBMax: Math.round(Math.max(...records.map((r) => r.bytes?.precopy ?? 0)) / 1024),
    finalDeltaKiB: Math.round(median(records.map((r) => r.bytes?.final ?? 0)) / 1024),
    downtimeMsP50: median(records.map((r) => r.downtimeMs ?? 0)),
    downtimeMsMax: Math.max(...records.map((r) => r.downtimeMs ?? 0)),
    totalMsP50: median(records.map((r) => r.totalMs)),
    breakdownP50: breakdownP50(records, phases),
  };
}

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const { clients, close } = await startScratchStores('bench-migration');
  const phases = phaseLog();
  // Started inside the try: an agent that fails to start must not leave the other's timers and the
  // stores holding the process open.
  const loops: RunningAgent[] = [];
  const moves = ctx.quick ? 2 : 6;
  const figures: Record<string, unknown> = {
    movesPerGuest: moves,
    loadavg1: Math.round(loadavg()[0]! * 10) / 10,
  };
  try {
    await startAgents(clients, createImageStore(clients), phases, loops);
    for (const guest of GUESTS) {
      const records = await moveBackAndForth(clients, guest, moves);
      const out = figuresOf(guest.memPages, records, phases);
      const { label } = guest;
      ctx.log(`${label} pre-copy by move: ${decisionsOf(records, phases)}`);
      ctx.log(
        `${label} guest (${out.memMiB} MiB): pre-copy ${out.precopyKiB} KiB, final delta ${out.finalDeltaKiB} KiB, downtime p50 ${out.downtimeMsP50} ms (max ${out.downtimeMsMax}), total p50 ${out.totalMsP50} ms`,
      );
      ctx.log(
        `${label} downtime p50 by phase (ms): ${Object.entries(out.breakdownP50)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      figures[label] = out;
    }
  } finally {
    // Every agent stops and the stores close even when one agent's shutdown fails (its lease release,
    // say): a failed stop must not keep the stores running.
    await Promise.allSettled(loops.map((l) => l.stop()));
    clients.dynamo.destroy();
    clients.s3.destroy();
    await close();
  }
  return figures;
}
