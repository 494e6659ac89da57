// `seesaw simulate`: run the balancer's own domain code on an in-memory cluster, beside baselines.
import { writeFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import type { BalancingConfig } from '../../shared/domain/types.ts';
import type { SimulateArgs } from '../../shared/sim/run.ts';
import { BUILTIN_SCENARIOS } from '../../shared/sim/scenarios.ts';

const int = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return n;
};
const positive = (value: string) => {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
};
const oneOf =
  <T extends string>(...values: T[]) =>
  (value: string): T => {
    if (!values.includes(value as T)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return value as T;
  };

/** Each config flag and the config field it sets. */
const CONFIG_FLAGS = {
  policy: 'pairing',
  withRandom: 'withRandom',
  selection: 'selection',
  threshold: 'thresholdFactor',
  margin: 'margin',
  aim: 'aim',
  trigger: 'trigger',
  high: 'highThreshold',
  low: 'lowThreshold',
  direction: 'direction',
  maxMoves: 'maxMovesPerExchange',
  perNode: 'maxMigrationsPerNode',
  shards: 'shards',
} as const satisfies Record<string, keyof BalancingConfig>;
type ConfigFlags = { [F in keyof typeof CONFIG_FLAGS]?: BalancingConfig[(typeof CONFIG_FLAGS)[F]] };

/** The flags that pass to the run as they are. */
const INPUT_FLAGS = [
  'scenario',
  'trace',
  'history',
  'nodes',
  'vms',
  'capacity',
  'rounds',
  'estimate',
] as const;

type Flags = Pick<SimulateArgs, (typeof INPUT_FLAGS)[number] | 'seed'> &
  ConfigFlags & { greedy: boolean; json?: boolean; plot?: string };

/** The config flags given, as config fields (laid over the scenario's config and the defaults). */
function configOf(flags: Flags): Partial<BalancingConfig> {
  const config: Record<string, unknown> = {};
  for (const [flag, field] of Object.entries(CONFIG_FLAGS))
    if (flags[flag as keyof ConfigFlags] !== undefined) config[field] = flags[flag as keyof ConfigFlags];
  return config as Partial<BalancingConfig>;
}

function argsOf(flags: Flags): SimulateArgs {
  const given = INPUT_FLAGS.filter((flag) => flags[flag] !== undefined).map((flag) => [flag, flags[flag]]);
  return { ...Object.fromEntries(given), seed: flags.seed, config: configOf(flags), greedy: flags.greedy };
}

function declareOptions(command: Command): Command {
  return command
    .option(
      '--scenario <name|file>',
      `built-in (${Object.keys(BUILTIN_SCENARIOS).join(', ')}) or a JSON file`,
    )
    .option('--trace <dir>', 'replay utilisation traces (one file per VM, one percentage per line)')
    .option('--history <file>', 'replay run records exported with `seesaw runs --json`')
    .option('--nodes <n>', 'nodes (trace replay; resizes a built-in scenario)', int(1))
    .option('--vms <n>', 'VMs (resizes a built-in scenario)', int(0))
    .option('--capacity <c>', 'load units each node serves per tick (trace replay)', positive)
    .option(
      '--policy <name>',
      'pairing',
      oneOf('random', 'round-robin', 'sender', 'receiver', 'symmetric', 'spread'),
    )
    .option('--with-random', 'pair the nodes a threshold policy leaves over at random')
    .option('--no-with-random', 'leave them unpaired')
    .option('--selection <rule>', 'selection rule', oneOf('best-balance', 'half-diff', 'target', 'largest'))
    .option('--threshold <factor>', 'exceeds threshold factor (≥ 1)', positive)
    .option('--margin <load>', 'exceeds absolute margin', (v) => Number(v))
    .option('--aim <aim>', 'pair (even the pair) or mean (stop at the mean)', oneOf('pair', 'mean'))
    .option(
      '--trigger <trigger>',
      'auto (default: chosen each round from spread vs noise), difference or headroom',
      oneOf('auto', 'difference', 'headroom'),
    )
    .option('--high <fraction>', 'high threshold, fraction of capacity', (v) => Number(v))
    .option('--low <fraction>', 'low threshold, fraction of capacity', (v) => Number(v))
    .option('--direction <d>', 'both or push-only', oneOf('both', 'push-only'))
    .option('--max-moves <n>', 'VMs per exchange', int(1))
    .option('--per-node <n>', 'migrations per node per round', int(1))
    .option('--rounds <n>', 'rounds (trace replay: ticks; default all)', int(1))
    .option('--seed <n>', 'random seed', int(0), 1)
    .option('--shards <n>', 'balancer shards', int(1))
    .option('--estimate <how>', 'trace replay: what the balancer sees: last, peak:N or ewma:A', 'last')
    .option('--no-greedy', 'skip the greedy baseline (slow on very large clusters)')
    .option('--json', 'print one JSON object')
    .option('--plot <file.svg>', 'write node-load spread and CV per round as SVG');
}

async function simulateFromFlags(flags: Flags) {
  const [{ plotSvg }, { formatTable }, { runSimulation, seriesJson }] = await Promise.all([
    import('../../shared/sim/plot.ts'),
    import('../../shared/sim/report.ts'),
    import('../../shared/sim/run.ts'),
  ]);
  const { result, series } = runSimulation(argsOf(flags));
  if (flags.plot) writeFileSync(flags.plot, plotSvg(`${result.scenario} (seed ${flags.seed})`, series));
  if (flags.json) {
    process.stdout.write(`${JSON.stringify({ ...result, series: seriesJson(series, result.lowerBound) })}\n`);
    return;
  }
  console.log(formatTable(result));
  if ('recorded' in result) {
    const r = result.recorded as { rounds: number; migrations: number; final: { cv: number } };
    console.log(
      `recorded: ${r.rounds} rounds, ${r.migrations} migrations, final CV ${(r.final.cv * 100).toFixed(2)}%`,
    );
  }
  if (flags.plot) console.log(`plot written to ${flags.plot}`);
}

export function registerSimulate(program: Command) {
  declareOptions(
    program
      .command('simulate')
      .description('simulate balancing rounds on an in-memory cluster, against greedy and no balancing'),
  ).action(simulateFromFlags);
}
