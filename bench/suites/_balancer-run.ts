// The balancer suite's timed run, in a process of its own started with the balancer Lambda's heap
// flags (functions/balancer/heap.ts), so that the figure is that of the run as it is deployed:
// `node <heap flags> --import tsx bench/suites/_balancer-run.ts <nodes> <vmsPerNode> <reps> [fresh]`
// prints the figures as one JSON line. (A leading underscore keeps the harness from taking it for a
// suite.) With `fresh`, each run reads the same node items built anew just before it (outside the
// timed span, property by property as the SDK's unmarshalling builds them), as the Lambda reads new
// items from the store every run, rather than the items the process keeps from run to run.
import { runBalancer } from '../../functions/balancer/run.ts';
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { createRng } from '../../shared/domain/rng.ts';
import { clusterRecords, memoryClients } from './balancer.ts';

const NOW = 1_700_000_000_000;
const quiet = { info() {}, warn() {} };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round2 = (x: number) => Math.round(x * 100) / 100;

/** Runs before the timed ones: the first runs of a process also pay for compiling the code. */
const WARM_UP_RUNS = 2;
/** The steady state's runs (same process, after the timed ones): runs 20–34. */
const STEADY_FROM = 20;
const STEADY_RUNS = 15;

/**
 * One whole run in memory: a dry run of runBalancer over node items served from memory (read,
 * input building, learning, decideRound, record building; nothing written), with its phase breakdown.
 * The medians are of warm runs (as a scheduled run in a warm Lambda container is): runs 2–8 of the
 * process, and (`steadyState`, kept items only) runs 20–34 of the same process; the process's
 * first run, which also compiles the code, is reported apart.
 */
async function decisionTime(nodes: number, vmsPerNode: number, reps: number, fresh: boolean) {
  const records = clusterRecords(nodes, vmsPerNode, 7);
  const config = { ...DEFAULT_BALANCING_CONFIG, maxMigrationsPerCluster: 1_000_000 };
  let clients = memoryClients(records, config);
  const runs: TimedRun[] = [];
  // The seven (reps) after the warm-up runs, then on to the steady state's runs unless items are new each run.
  const total = fresh ? WARM_UP_RUNS + reps : STEADY_FROM + STEADY_RUNS;
  for (let round = 0; round < total; round++) {
    if (fresh) clients = memoryClients(clusterRecords(nodes, vmsPerNode, 7), config);
    runs.push(await timedRun(clients, round));
  }
  const timed = runs.slice(WARM_UP_RUNS, WARM_UP_RUNS + reps);
  const last = timed[timed.length - 1] as TimedRun;
  const breakdown = phaseMedians(timed);
  return {
    nodes,
    vms: nodes * vmsPerNode,
    /** Wall time of the whole dry run. */
    runMs: round2(median(timed.map((t) => t.wallMs))),
    /** CPU time of the same span (user + system): steadier than wall time on a shared machine. */
    runCpuMs: round2(median(timed.map((t) => t.cpuMs))),
    /** The fastest timed run's CPU time (the others lost time to the machine's other work or to GC). */
    minRunCpuMs: round2(Math.min(...timed.map((t) => t.cpuMs))),
    /** CPU time of the process's first run, which also compiles the code (not in the medians). */
    firstRunCpuMs: round2((runs[0] as TimedRun).cpuMs),
    decideRoundMs: breakdown.decideMs ?? Number.NaN,
    /** CPU time per phase (medians): readMs, inputMs, learnMs, decideMs, writeMs, recordMs. */
    phasesCpuMs: breakdown,
    moves: last.moves,
    cvBefore: round2(last.cvBefore * 1000) / 1000,
    cvAfter: round2(last.cvAfter * 1000) / 1000,
    /** The V8 flags this process ran under (the balancer Lambda's, unless the suite measured without). */
    heapFlags: process.execArgv.filter((flag) => flag.startsWith('--max-')),
    ...(fresh ? {} : { steadyState: steadyState(runs.slice(STEADY_FROM)) }),
  };
}

interface TimedRun {
  wallMs: number;
  cpuMs: number;
  phasesCpuMs: Record<string, number>;
  moves: number;
  cvBefore: number;
  cvAfter: number;
}

/**
 * One whole dry run, timed, and the few figures read from its record. The record is dropped here,
 * so that it is garbage when the next run starts: awaited in the loop above, the loop's suspended
 * frame kept each run's record (its 5,000 decisions and 9,700 orders) alive through the next run,
 * which a Lambda, having returned its result, does not.
 */
async function timedRun(clients: ReturnType<typeof memoryClients>, round: number): Promise<TimedRun> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const record = await runBalancer(
    { clients, clock: () => NOW, rng: createRng(round), log: quiet },
    { round, dryRun: true },
  );
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return {
    wallMs,
    cpuMs: (used.user + used.system) / 1000,
    phasesCpuMs: { ...record.phasesCpuMs },
    moves: record.orders.length,
    cvBefore: record.before.cv,
    cvAfter: record.after.cv,
  };
}

function phaseMedians(runs: readonly TimedRun[]): Record<string, number> {
  const phases = Object.keys(runs[0]?.phasesCpuMs ?? {});
  return Object.fromEntries(phases.map((k) => [k, round2(median(runs.map((r) => r.phasesCpuMs[k] ?? 0)))]));
}

/**
 * The runs of a process that has run for a while, as a scheduled Lambda's container has (one run
 * a minute per shard, hours in one container): the median, and the mean, which spreads the full
 * collections (one about every fourth run) over the runs rather than leaving them to the median's tail.
 */
function steadyState(runs: readonly TimedRun[]) {
  const cpu = runs.map((r) => r.cpuMs);
  return {
    warmUpRuns: STEADY_FROM,
    runs: runs.length,
    runCpuMs: round2(median(cpu)),
    meanRunCpuMs: round2(cpu.reduce((a, b) => a + b, 0) / cpu.length),
    minRunCpuMs: round2(Math.min(...cpu)),
    maxRunCpuMs: round2(Math.max(...cpu)),
    phasesCpuMs: phaseMedians(runs),
  };
}

export type DecisionFigures = Awaited<ReturnType<typeof decisionTime>>;

const [nodes, vmsPerNode, reps] = process.argv.slice(2, 5).map(Number);
if (nodes && vmsPerNode && reps) {
  console.log(JSON.stringify(await decisionTime(nodes, vmsPerNode, reps, process.argv[5] === 'fresh')));
}
