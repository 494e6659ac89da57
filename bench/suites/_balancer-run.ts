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

/**
 * One whole run in memory: a dry run of runBalancer over node items served from memory (read,
 * input building, learning, decideRound, record building; nothing written), with its phase breakdown.
 * The medians are of warm runs (as a scheduled run in a warm Lambda container is); the process's
 * first run, which also compiles the code, is reported apart.
 */
async function decisionTime(nodes: number, vmsPerNode: number, reps: number, fresh: boolean) {
  const records = clusterRecords(nodes, vmsPerNode, 7);
  const config = { ...DEFAULT_BALANCING_CONFIG, maxMigrationsPerCluster: 1_000_000 };
  let clients = memoryClients(records, config);
  const whole: number[] = [];
  const wholeCpu: number[] = [];
  const phases: Record<string, number[]> = {};
  let moves = 0;
  let cvBefore = 0;
  let cvAfter = 0;
  let firstRunCpuMs = 0;
  for (let r = -WARM_UP_RUNS; r < reps; r++) {
    const round = r + WARM_UP_RUNS;
    if (fresh) clients = memoryClients(clusterRecords(nodes, vmsPerNode, 7), config);
    const cpu = process.cpuUsage();
    const start = performance.now();
    const record = await runBalancer(
      { clients, clock: () => NOW, rng: createRng(round), log: quiet },
      { round, dryRun: true },
    );
    const wall = performance.now() - start;
    const used = process.cpuUsage(cpu);
    if (r === -WARM_UP_RUNS) firstRunCpuMs = (used.user + used.system) / 1000;
    if (r < 0) continue;
    whole.push(wall);
    wholeCpu.push((used.user + used.system) / 1000);
    for (const [phase, ms] of Object.entries(record.phasesCpuMs ?? {})) {
      phases[phase] = [...(phases[phase] ?? []), ms];
    }
    moves = record.orders.length;
    cvBefore = record.before.cv;
    cvAfter = record.after.cv;
  }
  const breakdown = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round2(median(v))]));
  return {
    nodes,
    vms: nodes * vmsPerNode,
    /** Wall time of the whole dry run. */
    runMs: round2(median(whole)),
    /** CPU time of the same span (user + system): steadier than wall time on a shared machine. */
    runCpuMs: round2(median(wholeCpu)),
    /** The fastest timed run's CPU time (the others lost time to the machine's other work or to GC). */
    minRunCpuMs: round2(Math.min(...wholeCpu)),
    /** CPU time of the process's first run, which also compiles the code (not in the medians). */
    firstRunCpuMs: round2(firstRunCpuMs),
    decideRoundMs: breakdown.decideMs ?? Number.NaN,
    /** CPU time per phase (medians): readMs, inputMs, learnMs, decideMs, writeMs, recordMs. */
    phasesCpuMs: breakdown,
    moves,
    cvBefore: round2(cvBefore * 1000) / 1000,
    cvAfter: round2(cvAfter * 1000) / 1000,
    /** The V8 flags this process ran under (the balancer Lambda's, unless the suite measured without). */
    heapFlags: process.execArgv.filter((flag) => flag.startsWith('--max-')),
  };
}

export type DecisionFigures = Awaited<ReturnType<typeof decisionTime>>;

const [nodes, vmsPerNode, reps] = process.argv.slice(2, 5).map(Number);
if (nodes && vmsPerNode && reps) {
  console.log(JSON.stringify(await decisionTime(nodes, vmsPerNode, reps, process.argv[5] === 'fresh')));
}
