// Live migration between two agents (real clock, real kernels, dynalite + s3rver started here):
// bytes written by pre-copy and by the final delta, downtime (guest stopped on the source → its
// first tick on the target) and total time, for a hot guest that dirties its whole working set
// every tick and a cool one whose small working set sits in a larger memory; and where each
// downtime went, from the two agents' logs: the source's encode, upload (none when the final delta
// travels in the hand-over item) and item write, the target's notice of IMAGE_READY, its download
// (none from the item) and apply, the take and the first tick.
//
// In two topologies, one after the other. "processes" (the stable keys): each agent in a child
// process of its own (_migration-agent.ts), the stores and the bench's polling in this one, as
// `seesaw up` runs them; on AWS each agent is a host of its own and the stores are services.
// "oneProcess" (under `oneProcess`): the stores, both agents and the polling on this process's one
// event loop, as the bench ran before; what that sharing costs is the difference between the two.
// Each topology starts stores of its own. SEESAW_MIGRATION_TOPOLOGIES picks them and their order.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningAgent } from '../../node-agent/agent/run.ts';
import { orderDeadline } from '../../shared/domain/protocol.ts';
import { ensureTableAndBucket, localClients, startLocalStores } from '../../shared/local/stores.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { getMigration, type MigrationRecord } from '../../shared/storage/migrations.ts';
import { createVm, findVm, type GuestSpec, orderMigration, type VmRecord } from '../../shared/storage/vms.ts';
import {
  type LogEntry,
  loggerTo,
  NODES,
  type Pause,
  type Pauses,
  REPORT_MS,
  recordPauses,
  startBenchAgent,
  startChild,
} from './_migration-node.ts';

export const name = 'migration';

/**
 * The phase fields the agents log at the hand-over ('image handed over', 'migrated in') and the
 * target's preparation ('prepared for the final delta'), by migration id; and every warning or
 * error, with its time, so an outlier move can be matched with what went wrong during it. `take`
 * reads one entry, from an agent's logger in this process or from a child's (see loggerTo).
 */
type Phases = Record<string, number | string | boolean | undefined>;
function phaseLog() {
  const source = new Map<string, Phases>();
  const target = new Map<string, Phases>();
  const prepared = new Map<string, Phases>();
  const decisions = new Map<string, Decision>();
  const warnings: { at: number; vm?: string; msg: string }[] = [];
  const take = ({ level, obj, msg, at }: LogEntry) => {
    if (level === 'warn' || level === 'error') {
      const o = obj as { vm?: string; node?: string; err?: string; why?: string };
      const detail = o.err ?? o.why;
      const text = `${o.node ? `${o.node}: ` : ''}${msg}${detail ? `: ${detail}` : ''}`;
      warnings.push({ at, ...(o.vm ? { vm: o.vm } : {}), msg: text });
    }
    if (level === 'debug') {
      const o = obj as Decision & { migration?: string };
      if (msg?.startsWith('pre-copy done') && o.migration) decisions.set(o.migration, o);
    }
    if (level !== 'info') return;
    const o = obj as { migration?: string; phases?: Phases; prepare?: Phases };
    if (o.migration && o.prepare && msg === 'prepared for the final delta')
      prepared.set(o.migration, o.prepare);
    if (!o.migration || !o.phases) return;
    if (msg === 'image handed over') source.set(o.migration, o.phases);
    if (msg === 'migrated in') target.set(o.migration, o.phases);
  };
  return { take, source, target, prepared, decisions, warnings };
}

/**
 * What else held each process while a guest was down: its GC and event-loop stalls (recordPauses),
 * by process: '' for the one process of "oneProcess"; each node's id and 'stores' (this process:
 * dynalite, s3rver and the bench's polling) for "processes".
 */
type ProcessPauses = Map<string, Pauses>;
const within = (xs: Pause[], from: number, to: number) => xs.filter((x) => x.at + x.ms >= from && x.at <= to);
/** GC and stall ms of one process overlapping [from, to] (epoch ms), and the longest single one of each. */
function during({ gcs, stalls }: Pauses, from: number, to: number) {
  const sum = (xs: Pause[]) => Math.round(xs.reduce((a, x) => a + x.ms, 0));
  const max = (xs: Pause[]) => Math.round(Math.max(0, ...xs.map((x) => x.ms)));
  const g = within(gcs, from, to);
  const st = within(stalls, from, to);
  return { gcMs: sum(g), gcMaxMs: max(g), stallMs: sum(st), stallMaxMs: max(st) };
}
/**
 * `during` for every process, its figures named for it in this move: `gcMs` for the one process,
 * `srcGcMs`, `tgtGcMs`, `storesGcMs` for the source's, the target's and the stores' processes.
 */
function pausesIn(r: MigrationRecord, processes: ProcessPauses, from: number, to: number) {
  const label = (key: string) => (key === r.from ? 'src' : key === r.to ? 'tgt' : key);
  // The source's first, then the target's, then the stores'.
  const rank = (key: string) => (key === r.from ? 0 : key === r.to ? 1 : 2);
  const keys = [...processes.keys()].sort((a, b) => rank(a) - rank(b));
  return Object.assign(
    {},
    ...keys.map((k) => prefixed(label(k), during(processes.get(k)!, from, to))),
  ) as Record<string, number>;
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
/**
 * One move in detail, to explain an outlier: whether the target was restored and waiting when the
 * source stopped (and for how long), how it learnt of the pre-copy and of IMAGE_READY (a watch's
 * read or the reconcile), the path it took (apply onto its prepared copy, or a whole restore), each
 * phase of the downtime, the GC and event-loop stalls inside it, and the warnings logged meanwhile.
 */
function moveDetail(r: MigrationRecord, phases: PhaseLog, pauses: ProcessPauses) {
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
      ? prefixed('ready', pausesIn(r, pauses, s.targetReadyAt, s.stoppedAt))
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
    ...pausesIn(r, pauses, from, to),
    warnings: phases.warnings
      .filter((w) => w.at >= r.orderedAt && w.at <= to && (w.vm === undefined || w.vm === r.vm))
      .map((w) => w.msg),
  };
}
type MoveDetail = ReturnType<typeof moveDetail>;

/** `{ gcMs }` as `{ readyGcMs }`, say: the same figures for another window or process ('' keeps them). */
const prefixed = <T extends Record<string, number>>(prefix: string, figures: T) =>
  prefix === ''
    ? figures
    : (Object.fromEntries(
        Object.entries(figures).map(([k, v]) => [`${prefix}${k[0]!.toUpperCase()}${k.slice(1)}`, v]),
      ) as Record<string, number>);

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `probe`'s first defined value, polled every 10 ms; `alive` throws when a node's process has died. */
async function until<T>(
  probe: () => Promise<T | undefined>,
  alive: () => void,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    alive();
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

/** The two agents of one topology, wherever they run. */
interface Nodes {
  /** Throws if a node's process has died (a child's exit would otherwise show as a timeout). */
  alive(): void;
  /** Each node process's pauses so far (the stores' process's are the suite's own). */
  pauses(): Promise<ProcessPauses>;
  stop(): Promise<void>;
}

/** "oneProcess": both agents in this process, on the clients and image store the bench uses. */
async function nodesInProcess(clients: Clients, phases: PhaseLog): Promise<Nodes> {
  const loops: RunningAgent[] = [];
  const stop = async () => {
    // Every agent stops even when one's shutdown fails (its lease release, say).
    await Promise.allSettled(loops.map((l) => l.stop()));
  };
  const images = createImageStore(clients);
  try {
    for (const id of NODES)
      loops.push(await startBenchAgent(id, { clients, images, log: loggerTo(phases.take) }));
  } catch (error) {
    await stop();
    throw error;
  }
  return { alive: () => {}, pauses: async () => new Map(), stop };
}

/** "processes": each agent in a child process of its own, on the stores this process runs. */
async function nodesInChildren(stores: Stores, phases: PhaseLog): Promise<Nodes> {
  const children = NODES.map((id) => startChild({ id, ...stores.endpoints }, phases.take));
  const stop = async () => {
    await Promise.all(children.map((c) => c.stop()));
  };
  try {
    await Promise.all(children.map((c) => c.ready));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    alive: () => {
      for (const c of children) c.alive();
    },
    pauses: async () =>
      new Map(await Promise.all(children.map(async (c, i) => [NODES[i]!, await c.pauses()] as const))),
    stop,
  };
}

/** In-memory stores for one topology, as startScratchStores makes them, with the endpoints a child needs. */
async function scratchStores(name: string) {
  const scratch = mkdtempSync(join(tmpdir(), `${name}-`));
  const stores = await startLocalStores({ scratchDir: scratch, dynamoPort: 0, s3Port: 0 });
  const names = { tableName: name, bucketName: name };
  const clients = localClients(stores, names);
  const close = async () => {
    clients.dynamo.destroy();
    clients.s3.destroy();
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  };
  await ensureTableAndBucket(clients).catch(async (error) => {
    await close();
    throw error;
  });
  const { dynamoEndpoint, s3Endpoint } = stores;
  return { clients, endpoints: { dynamoEndpoint, s3Endpoint, ...names }, close };
}
type Stores = Awaited<ReturnType<typeof scratchStores>>;

/** A move that did not end on its target in time: why, as far as its record and the warnings say. */
async function stuck(clients: Clients, id: string, phases: PhaseLog, error: Error): Promise<never> {
  const record = await getMigration(clients, id).catch(() => undefined);
  const outcome = record ? `${record.outcome}${record.reason ? ` (${record.reason})` : ''}` : 'no record yet';
  const warned = phases.warnings.slice(-5).map((w) => w.msg);
  throw new Error(
    `${id}: ${error.message}; migration ${outcome}; last warnings: ${warned.join(' | ') || 'none'}`,
  );
}

/** Moves one guest back and forth `moves` times; the migration records. */
async function moveBackAndForth(
  clients: Clients,
  { label, guest, memPages }: (typeof GUESTS)[number],
  moves: number,
  phases: PhaseLog,
  alive: () => void,
) {
  const id = `bench-${label}`;
  await createVm(clients, { id, owner: NODES[0]!, guest, memPages }, Date.now());
  let vm = await until(async () => {
    const v = await findVm(clients, id);
    return v?.state === 'RUNNING' ? v : undefined;
  }, alive);
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
    }, alive).catch((error: Error) => stuck(clients, order.id, phases, error));
    records.push(await until(() => getMigration(clients, order.id), alive));
    // The target logs its phases after it published the final delta (off the downtime): the last
    // move's line would otherwise miss the figures, and count as a move that did not apply.
    await until(async () => (phases.target.has(order.id) ? true : undefined), alive, 10_000).catch(
      () => undefined,
    );
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
function figuresOf(memPages: number, records: MigrationRecord[], phases: PhaseLog, pauses: ProcessPauses) {
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

/**
 * Each process's main thread between two readings: s on a CPU and s runnable but waiting for one
 * (another process had it), by process ('process' for the one of "oneProcess").
 */
function cpuBetween(before: ProcessPauses, after: ProcessPauses) {
  const out: Record<string, { wallS: number; cpuS: number; runqueueS: number }> = {};
  const s1 = (ms: number) => Math.round(ms / 100) / 10;
  for (const [key, { cpu }] of after) {
    const from = before.get(key)?.cpu;
    if (!cpu || !from) continue;
    out[key || 'process'] = {
      wallS: s1(cpu.at - from.at),
      cpuS: s1(cpu.runMs - from.runMs),
      runqueueS: s1(cpu.waitMs - from.waitMs),
    };
  }
  return out;
}
const cpuLine = (cpu: ReturnType<typeof cpuBetween>) =>
  Object.entries(cpu)
    .map(([k, c]) => `${k} ${c.cpuS} s on a CPU, ${c.runqueueS} s waiting for one, in ${c.wallS} s`)
    .join('; ') || 'not measured (no /proc/self/schedstat)';

const TOPOLOGIES = ['processes', 'oneProcess'] as const;
type Topology = (typeof TOPOLOGIES)[number];

/** Both guests' moves in one topology, on stores of their own; each guest's figures, by label. */
async function measure(topology: Topology, moves: number, log: (line: string) => void) {
  // A table and bucket name: lower case (S3), one per topology.
  const stores = await scratchStores(`bench-migration-${topology.toLowerCase()}`);
  const phases = phaseLog();
  const own = recordPauses();
  const figures: Record<string, unknown> = { loadavg1: Math.round(loadavg()[0]! * 10) / 10 };
  let nodes: Nodes | undefined;
  try {
    nodes =
      topology === 'processes'
        ? await nodesInChildren(stores, phases)
        : await nodesInProcess(stores.clients, phases);
    const readAll = async () => {
      const pauses = await nodes!.pauses();
      return pauses.set(topology === 'processes' ? 'stores' : '', own.read());
    };
    for (const guest of GUESTS) {
      const before = await readAll();
      const records = await moveBackAndForth(stores.clients, guest, moves, phases, nodes.alive);
      const pauses = await readAll();
      const out = { ...figuresOf(guest.memPages, records, phases, pauses), cpu: cpuBetween(before, pauses) };
      const label = `${topology} ${guest.label}`;
      log(`${label} pre-copy by move: ${decisionsOf(records, phases)}`);
      log(
        `${label} guest (${out.memMiB} MiB): pre-copy ${out.precopyKiB} KiB, final delta ${out.finalDeltaKiB} KiB, downtime p50 ${out.downtimeMsP50} ms (max ${out.downtimeMsMax}), total p50 ${out.totalMsP50} ms`,
      );
      log(
        `${label} downtime p50 by phase (ms): ${Object.entries(out.breakdownP50)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
      log(`${label} main threads over the moves: ${cpuLine(out.cpu)}`);
      for (const line of out.moves) log(`${label} ${line}`);
      figures[guest.label] = out;
    }
  } finally {
    // The agents stop and the stores close even when an agent's shutdown fails: a failed stop must
    // not keep the stores running.
    own.stop();
    await nodes?.stop().catch(() => undefined);
    await stores.close();
  }
  return figures;
}

/**
 * The topologies to run, in order: SEESAW_MIGRATION_TOPOLOGIES (say `oneProcess,processes`, to see
 * what running second is worth: the later one finds this process's store code warm), by default
 * the product's first.
 */
function topologies(env = process.env.SEESAW_MIGRATION_TOPOLOGIES): Topology[] {
  const named = (env ?? TOPOLOGIES.join(',')).split(',').map((t) => t.trim());
  const unknown = named.filter((t) => !(TOPOLOGIES as readonly string[]).includes(t));
  if (unknown.length > 0 || named.length === 0)
    throw new Error(`SEESAW_MIGRATION_TOPOLOGIES: ${unknown.join(', ')} (known: ${TOPOLOGIES.join(', ')})`);
  return named as Topology[];
}

export async function run(ctx: {
  quick: boolean;
  log: (line: string) => void;
}): Promise<Record<string, unknown>> {
  const moves = ctx.quick ? 2 : 6;
  const order = topologies();
  const figures: Record<string, unknown> = { movesPerGuest: moves, order: order.join(', ') };
  for (const topology of order) {
    const measured = await measure(topology, moves, ctx.log);
    // The stable keys (hot, cool, loadavg1) are the product's topology; the one-process figures sit beside them.
    if (topology === 'processes') Object.assign(figures, measured);
    else figures.oneProcess = measured;
  }
  return figures;
}
