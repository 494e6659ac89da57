// `seesaw agent`: one node's agent process (registers, holds its lease, runs and migrates VMs);
// `seesaw agent install --systemd`: the unit that keeps it running on a host.
import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { type Command, Option } from 'commander';
import type { AgentFlags } from '../../node-agent/main.ts';
import { CLI_ENTRY } from '../self.ts';
import { agentUnit, DEFAULT_ENV_FILE, DEFAULT_UNIT_DIR, UNIT_NAME } from '../systemd.ts';

interface InstallFlags {
  systemd?: boolean;
  user: string;
  environmentFile: string;
  /** The old spelling: Node reads `--env-file` itself wherever it stands, so it is refused. */
  envFile?: string;
  dir: string;
  print?: boolean;
  entry: string;
  nodePath: string;
}

/** The `seesaw agent` flags given on this command line (commander hands them to `agent`, not `install`). */
function agentFlagsGiven(agent: Command | null): string[] {
  if (!agent) return [];
  return agent.options.flatMap((option) => {
    const key = option.attributeName();
    const value = agent.getOptionValue(key);
    if (agent.getOptionValueSource(key) !== 'cli' || value === undefined) return [];
    return (Array.isArray(value) ? value : [value]).flatMap((v) => [option.long ?? '', String(v)]);
  });
}

function registerInstall(agent: Command) {
  agent
    .command('install')
    .description(
      `write a systemd unit (${UNIT_NAME}) that runs this agent, restarted on failure, as a dedicated user`,
    )
    .argument('[agent-flags...]', 'more `seesaw agent` flags for the unit, after --')
    .addHelpText(
      'after',
      '\n`seesaw agent` flags (--node, --capacity, --weights, …) given here go into the unit. Without --node\nthe agent reads SEESAW_NODE from the environment file.',
    )
    .option('--systemd', 'install as a systemd service (the only kind so far)')
    .option('--user <name>', 'the dedicated user the agent runs as', 'seesaw')
    .option('--environment-file <path>', 'environment file the unit reads, if present', DEFAULT_ENV_FILE)
    .addOption(new Option('--env-file <path>').hideHelp())
    .option('--dir <dir>', 'where to write the unit', DEFAULT_UNIT_DIR)
    .option('--print', 'print the unit instead of writing it')
    .option('--entry <path>', 'the seesaw entry the unit runs', CLI_ENTRY)
    .option('--node-path <path>', 'the node binary the unit runs', process.execPath)
    .action((extra: string[], flags: InstallFlags, install: Command) => {
      if (flags.envFile !== undefined)
        throw new Error(
          "--env-file is Node's own flag (node loads that file into its own environment, or stops when it is missing); use --environment-file",
        );
      if (!flags.systemd) throw new Error('say how to install: --systemd (the only installer so far)');
      for (const [name, path] of [
        ['--entry', flags.entry],
        ['--node-path', flags.nodePath],
        ['--environment-file', flags.environmentFile],
      ] as const)
        if (!isAbsolute(path)) throw new Error(`${name} must be an absolute path, got "${path}"`);
      if (!/^[a-z_][a-z0-9_-]*$/.test(flags.user))
        throw new Error(`--user must be a plain user name, got "${flags.user}"`);
      const unit = agentUnit({
        node: flags.nodePath,
        entry: flags.entry,
        user: flags.user,
        envFile: flags.environmentFile,
        agentArgs: [...agentFlagsGiven(install.parent), ...extra],
      });
      if (flags.print) return void process.stdout.write(unit);
      mkdirSync(flags.dir, { recursive: true });
      const file = join(flags.dir, UNIT_NAME);
      writeFileSync(file, unit, { mode: 0o644 });
      console.log(`wrote ${file}`);
      console.log('then, as root:');
      console.log(
        `  id ${flags.user} || useradd --system --no-create-home --shell /usr/sbin/nologin ${flags.user}`,
      );
      console.log(`  systemctl daemon-reload && systemctl enable --now ${UNIT_NAME}`);
    });
}

export function registerAgent(program: Command) {
  const agent = program
    .command('agent')
    .description('run a node agent: lease, load reports, VMs and migrations for one node')
    .option('--node <id>', 'node id (default: SEESAW_NODE)')
    .option(
      '--capacity <units>',
      'work units the node serves per second (default: SEESAW_CAPACITY or 4000000)',
    )
    .option('--weights <list>', 'load weights, e.g. cpu=1,io=0.2,mem=0.1')
    .option('--labels <list...>', 'node labels, e.g. zone=a,disk=ssd')
    .option('--mem-pages <n>', 'guest memory the node can hold, in 64 KiB pages')
    .option('--lease-ms <ms>', 'lease length; the node fences itself if it cannot renew in time')
    .option('--report-ms <ms>', 'heartbeat and load-report period')
    .option('--tick-ms <ms>', 'kernel tick length')
    .option('--reconcile-ms <ms>', 'how often to look for work')
    .option('--checkpoint-ms <ms>', 'periodic checkpoint interval per VM')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
    .option('--qemu', 'also run x86 VMs (guest qemu:<image>) under QEMU, if qemu-system-x86_64 is installed')
    .action(async (flags: AgentFlags) => {
      // --data (global): read the local stores' endpoints from DIR/endpoints.json.
      const { resolveAgentConfig, runAgentProcess } = await import('../../node-agent/main.ts');
      await runAgentProcess(resolveAgentConfig(flags));
    });
  registerInstall(agent);
}
