// The seesaw CLI: one commander program; each command lives in its own module.
import { Command } from 'commander';
import { registerAgent } from './commands/agent.ts';
import { registerSimulate } from './commands/simulate.ts';
import { registerUp } from './commands/up.ts';

const program = new Command('seesaw')
  .description('Balance virtual-machine load across a cluster of hosts, with no central server.')
  .showHelpAfterError('(run with --help for usage)');

registerUp(program);
registerAgent(program);
registerSimulate(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  console.error(`seesaw: ${(error as Error).message}`);
  process.exitCode = 1;
}
