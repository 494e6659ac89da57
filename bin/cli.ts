// The seesaw CLI: one commander program; each command lives in its own module.
import { Command } from 'commander';
import { registerAgent } from './commands/agent.ts';
import { registerBalance } from './commands/balance.ts';
import { registerBench } from './commands/bench.ts';
import { registerCluster } from './commands/cluster.ts';
import { registerMigrations } from './commands/migrations.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerRuns } from './commands/runs.ts';
import { registerSimulate } from './commands/simulate.ts';
import { registerUp } from './commands/up.ts';
import { registerVm } from './commands/vm.ts';

const program = new Command('seesaw')
  .description('Balance virtual-machine load across a cluster of hosts, with no central server.')
  .showHelpAfterError('(run with --help for usage)');

registerUp(program);
registerAgent(program);
registerSimulate(program);
registerBench(program);

registerVm(program);
registerNodes(program);
registerBalance(program);
registerRuns(program);
registerMigrations(program);
registerCluster(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  console.error(`seesaw: ${(error as Error).message}`);
  process.exitCode = 1;
}
