// The seesaw CLI: one commander program; each command lives in its own module and loads what it
// needs (the AWS SDK, the control plane, the simulator) only when it runs, so `--help` and
// `--version` start fast.
import { Command, Option } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { registerAgent } from './commands/agent.ts';
import { registerBalance } from './commands/balance.ts';
import { registerBench } from './commands/bench.ts';
import { registerCluster } from './commands/cluster.ts';
import { registerImages } from './commands/images.ts';
import { registerMigrations } from './commands/migrations.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerRuns } from './commands/runs.ts';
import { registerSimulate } from './commands/simulate.ts';
import { registerUp } from './commands/up.ts';
import { registerVm } from './commands/vm.ts';

// The SDK warns every process on Node 20 about its 2027 support change; docs/cli.md says it once.
// Its own switch, so the agents and stores this process starts inherit it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** Options of the whole program, accepted before or after the subcommand. */
const GLOBAL_OPTIONS = ['data', 'api', 'token', 'stack', 'auth', 'region'] as const;

export function buildProgram(): Command {
  const program = new Command('seesaw')
    .description('Balance virtual-machine load across a cluster of hosts, with no central server.')
    .version(pkg.version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .option(
      '--data <dir>',
      'the local cluster data directory (default: SEESAW_DATA, the nearest .seesaw here or above, or the last `seesaw up`)',
    )
    .option('--api <url>', 'the API URL (default: SEESAW_API, the stack, or DIR/endpoints.json)')
    .option('--stack <name>', 'read the API URL from this CloudFormation stack (default: SEESAW_STACK)')
    .addOption(
      new Option(
        '--auth <mode>',
        'token or iam (default: SEESAW_AUTH; iam unless the API is loopback)',
      ).choices(['iam', 'token']),
    )
    .option('--token <token>', 'the API token in token mode (default: SEESAW_TOKEN, or DIR/token)')
    .option('--region <region>', 'AWS region for --stack and IAM signing (default: AWS_REGION)');

  // Subcommands see the global options as their own (a subcommand's own value wins).
  program.hook('preAction', (root, action) => {
    const globals = root.opts();
    for (const key of GLOBAL_OPTIONS)
      if (globals[key] !== undefined && action.getOptionValue(key) === undefined)
        action.setOptionValue(key, globals[key]);
  });

  registerUp(program);
  registerAgent(program);
  registerSimulate(program);
  registerBench(program);

  registerVm(program);
  registerImages(program);
  registerNodes(program);
  registerBalance(program);
  registerRuns(program);
  registerMigrations(program);
  registerCluster(program);
  return program;
}

// `seesaw cluster | head -3`: the reader went away; that is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  console.error(`seesaw: ${(error as Error).message}`);
  process.exitCode = 1;
}
