// `seesaw agent`: one node's agent process (registers, holds its lease, runs and migrates VMs).
import type { Command } from 'commander';
import type { AgentFlags } from '../../node-agent/main.ts';

export function registerAgent(program: Command) {
  program
    .command('agent')
    .description('run a node agent: lease, load reports, VMs and migrations for one node')
    .requiredOption('--node <id>', 'node id')
    .option('--capacity <units>', 'work units the node serves per second', '4000000')
    .option('--weights <list>', 'load weights, e.g. cpu=1,io=0.2,mem=0.1')
    .option('--labels <list...>', 'node labels, e.g. zone=a,disk=ssd')
    .option('--mem-pages <n>', 'guest memory the node can hold, in 64 KiB pages')
    .option('--lease-ms <ms>', 'lease length; the node fences itself if it cannot renew in time')
    .option('--report-ms <ms>', 'heartbeat and load-report period')
    .option('--tick-ms <ms>', 'kernel tick length')
    .option('--reconcile-ms <ms>', 'how often to look for work')
    .option('--checkpoint-ms <ms>', 'periodic checkpoint interval per VM')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .action(async (flags: AgentFlags) => {
      // --data (global): read the local stores' endpoints from DIR/endpoints.json.
      const { resolveAgentConfig, runAgentProcess } = await import('../../node-agent/main.ts');
      await runAgentProcess(resolveAgentConfig(flags));
    });
}
