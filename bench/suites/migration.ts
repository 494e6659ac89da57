// Live migration between two agents (real clock, real kernels, dynalite + s3rver started here):
// bytes written by pre-copy and by the final delta, downtime (guest stopped on the source → its
// first tick on the target) and total time, for a hot guest that dirties its whole working set
// every tick and a cool one whose small working set sits in a larger memory; and where each
// downtime went, from the two agents' logs: the source's encode, upload (none when the final delta
// travels in the hand-over item) and item write, the target's notice of IMAGE_READY, its download
// (none from the item) and apply, the take and the first tick.
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
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

/**
 * The phase fields the agents log at the hand-over ('image handed over', 'migrated in') and the
 * target's preparation ('prepared for the final delta'), by migration id; and every warning or
 * error, with its time, so an outlier move can be matched with what went wrong during it.
 */
type Phases = Record<string, number | string | boolean | undefined>;
function phaseLog() {
  const source = new Map<string, Phases>();
  const target = new Map<string, Phases>();
  const prepared = new Map<string, Phases>();
  const decisions = new Map<string, Decision>();
  const warnings: { at: number; vm?: string; msg: string }[] = [];
  const note = (obj: object, msg?: string) => {
    const o = obj as { vm?: string; err?: string; why?: string };
    const detail = o.err ?? o.why;
    warnings.push({
      at: Date.now(),
      ...(o.vm ? { vm: o.vm } : {}),
      msg: detail ? `${msg}: ${detail}` : `${msg}`,
    });
  };
  const log = {
    ...quiet,
    warn: note,
    error: note,
    debug(obj: object, msg?: string) {
      const o = obj as Decision & { migration?: string };
      if (msg?.startsWith('pre-copy done') && o.migration) decisions.set(o.migration, o);
    },
    info(obj: object, msg?: string) {
      const o = obj as { migration?: string; phases?: Phases; prepare?: Phases };
      if (o.migration && o.prepare && msg === 'prepared for the final delta')
        prepared.set(o.migration, o.prepare);
      if (!o.migration || !o.phases) return;
      if (msg === 'image handed over') source.set(o.migration, o.phases);
      if (msg === 'migrated in') target.set(o.migration, o.phases);
    },
  };
  return { log, source, target, prepared, decisions, warnings };
}

/**
 * What else held the process while a guest was down: garbage collection (from the runtime's gc
 * entries) and event-loop stalls (a 5 ms timer firing late by more than STALL_MS), with their
 * epoch times. dynalite, s3rver and both agents share this one event loop.
 */
const STALL_MS = 10;
function pauseLog() {
  const gcs: { at: number; ms: number }[] = [];
  const stalls: { at: number; ms: number }[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push({ at: performance.timeOrigin + e.startTime, ms: e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - last - 5;
    if (late > STALL_MS) stalls.push({ at: performance.timeOrigin + last, ms: late });
    last = now;
  }, 5);
  const within = (xs: { at: number; ms: number }[], from: number, to: number) =>
    xs.filter((x) => x.at + x.ms >= from && x.at <= to);
  return {
    /** GC and stall ms overlapping [from, to] (epoch ms), and the longest single one of each. */
    during(from: number, to: number) {
      const sum = (xs: { ms: number }[]) => Math.round(xs.reduce((a, x) => a + x.ms, 0));
      const max = (xs: { ms: number }[]) => Math.round(Math.max(0, ...xs.map((x) => x.ms)));
      const g = within(gcs, from, to);
      const st = within(stalls, from, to);
      return { gcMs: sum(g), gcMaxMs: max(g), stallMs: sum(st), stallMaxMs: max(st) };
    },
    stop() {
      observer.disconnect();
      clearInterval(timer);
    },
  };
}
type PauseLog = ReturnType<typeof pauseLog>;

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
/**
 * One move in detail, to explain an outlier: whether the target was restored and waiting when the
 * source stopped (and for how long), how it learnt of the pre-copy and of IMAGE_READY (a watch's
 * read or the reconcile), the path it took (apply onto its prepared copy, or a whole restore), each
 * phase of the downtime, the GC and event-loop stalls inside it, and the warnings logged meanwhile.
 */
function moveDetail(r: MigrationRecord, phases: PhaseLog, pauses: PauseLog) {
  const s = phases.source.get(r.id);
  const t = phases.target.get(r.id);
  const p = phases.prepared.get(r.id);
  const n = (v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : undefined);
  const diff = (a: unknown, b: unknown) =>
    typeof a === 'number' && typeof b === 'number' ? Math.round((a - b) * 10) / 10 : undefined;
  const from = r.stoppedAt ?? r.orderedAt;
  const to = r.runningAt ?? r.endedAt;
  return {
    id: r.id,
    downtimeMs: r.downtimeMs,
    finalKiB: Math.round((r.bytes?.final ?? 0) / 1024),
    // the target's preparation: announce -> its op started, the restore, and its note
    prepareWoke: p?.woke,
    prepareLagMs: diff(p?.startedAt, s?.precopiedAt),
    restoreMs: diff(p?.restoredAt, p?.startedAt),
    // ready -> stopped (undefined: the source stopped without the target's note, after readyWaitMs)
    readyToStopMs: diff(s?.stoppedAt, s?.targetReadyAt),
    // ... of which the target's own ready write (note -> its reply), and the source's stop after that
    // reply (see docs/protocol.md: the gap is the write, not the source's notice), with the GC and
    // event-loop stalls between the note and the stop
    readyWriteMs: diff(p?.readyAt, s?.targetReadyAt),
    stopAfterWriteMs: diff(s?.stoppedAt, p?.readyAt),
    ...(typeof s?.targetReadyAt === 'number' && typeof s.stoppedAt === 'number'
      ? prefixed('ready', pauses.during(s.targetReadyAt, s.stoppedAt))
      : {}),
    precopiedToStopMs: diff(s?.stoppedAt, s?.precopiedAt),
    sourceWoke: s?.woke,
    encodeMs: n(s?.encodeMs),
    itemWriteMs: n(s?.itemWriteMs),
    // hand-over written -> the target's read that saw it, -> its operation started
    seenMs: diff(t?.wokeAt, s?.readyAt),
    noticeMs: diff(t?.enteredAt, s?.readyAt),
    targetWoke: t?.woke,
    prepared: t?.prepared,
    path: t?.path,
    inline: t?.inline === true,
    downloadMs: n(t?.downloadMs),
    applyMs: n(t?.applyMs),
    takeMs: n(t?.takeMs),
    firstTickMs: n(t?.firstTickMs),
    ...pauses.during(from, to),
    warnings: phases.warnings
      .filter((w) => w.at >= r.orderedAt && w.at <= to && (w.vm === undefined || w.vm === r.vm))
      .map((w) => w.msg),
  };
}
type MoveDetail = ReturnType<typeof moveDetail>;

/** `{ gcMs }` as `{ readyGcMs }`, say: the same figures for another window of the move. */
const prefixed = <T extends Record<string, number>>(prefix: string, figures: T) =>
  Object.fromEntries(
    Object.entries(figures).map(([k, v]) => [`${prefix}${k[0]!.toUpperCase()}${k.slice(1)}`, v]),
  ) as Record<string, number>;

/** One line of a move's detail for the bench's log. */
function moveLine(d: MoveDetail) {
  const ready =
    d.readyToStopMs === undefined
      ? `target NOT ready (stopped ${d.precopiedToStopMs} ms after the pre-copy)`
      : `target ready ${d.readyToStopMs} ms before the stop`;
  const fields = Object.entries(d)
    .filter(
      ([k, v]) =>
        !['id', 'downtimeMs', 'warnings', 'readyToStopMs', 'precopiedToStopMs'].includes(k) &&
        v !== undefined,
    )
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const warned = d.warnings.length ? `; warnings: ${d.warnings.join(' | ')}` : '';
  return `${d.id}: down ${d.downtimeMs} ms; ${ready}; ${fields}${warned}`;
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
  phases: PhaseLog,
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
    // The target logs its phases after it published the final delta (off the downtime): the last
    // move's line would otherwise miss the figures, and count as a move that did not apply.
    await until(async () => (phases.target.has(order.id) ? true : undefined), 10_000).catch(() => undefined);
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
function figuresOf(memPages: number, records: MigrationRecord[], phases: PhaseLog, pauses: PauseLog) {
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
    downtimeMsByMove: records.map((r) => r.downtimeMs ?? Number.NaN),
    /** Each move in detail (see moveDetail), one line a move. */
    moves: records.map((r) => moveLine(moveDetail(r, phases, pauses))),
  };
}

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const { clients, close } = await startScratchStores('bench-migration');
  const phases = phaseLog();
  const pauses = pauseLog();
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
      const records = await moveBackAndForth(clients, guest, moves, phases);
      const out = figuresOf(guest.memPages, records, phases, pauses);
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
      for (const line of out.moves) ctx.log(`${label} ${line}`);
      figures[label] = out;
    }
  } finally {
    // Every agent stops and the stores close even when one agent's shutdown fails (its lease release,
    // say): a failed stop must not keep the stores running.
    pauses.stop();
    await Promise.allSettled(loops.map((l) => l.stop()));
    clients.dynamo.destroy();
    clients.s3.destroy();
    await close();
  }
  return figures;
}
