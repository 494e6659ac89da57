// `seesaw vm ls|show|set`: read VMs and change their settings.
import type { Command } from 'commander';
import {
  type CommonOptions,
  clientFor,
  numberOption,
  printJson,
  printTable,
  withConnection,
} from '../output.ts';
import { showVm, VM_HEADERS, vmRows } from './view.ts';

export function registerVmList(vm: Command) {
  withConnection(
    vm
      .command('ls')
      .description('list VMs')
      .option('--node <id>', 'only VMs owned by this node')
      .option(
        '--state <state>',
        'only VMs in this state (PENDING, RUNNING, SUSPENDING, SUSPENDED, DELETING, FAILED)',
      ),
  ).action(async (options: CommonOptions & { node?: string; state?: string }) => {
    const client = clientFor(options);
    const vms = await client.allVms({
      ...(options.node ? { node: options.node } : {}),
      ...(options.state ? { state: options.state.toUpperCase() } : {}),
    });
    if (options.json) printJson(vms);
    else printTable(VM_HEADERS, vmRows(vms), 'no VMs');
  });
}

export function registerVmShow(vm: Command) {
  withConnection(vm.command('show <id>').description('show one VM')).action(
    async (id: string, options: CommonOptions) => {
      const found = await clientFor(options).getVm(id);
      if (options.json) printJson(found);
      else showVm(found);
    },
  );
}

export function registerVmSet(vm: Command) {
  withConnection(
    vm
      .command('set <id>')
      .description('change target load, CPU limit, pinned or group')
      .option('--target-load <load>', "programmed target load ('none' clears)")
      .option('--cpu-limit <cores>', "CPU limit, applied when the guest next starts ('none' clears)")
      .option('--pinned', 'never move it')
      .option('--unpinned', 'let the balancer move it')
      .option('--group <name>', "anti-affinity group ('none' clears)"),
  ).action(
    async (
      id: string,
      options: CommonOptions & {
        targetLoad?: string;
        cpuLimit?: string;
        pinned?: boolean;
        unpinned?: boolean;
        group?: string;
      },
    ) => {
      if (options.pinned && options.unpinned) throw new Error('give --pinned or --unpinned, not both');
      const patch = {
        ...(options.targetLoad !== undefined
          ? {
              targetLoad:
                options.targetLoad === 'none' ? null : numberOption('--target-load', options.targetLoad),
            }
          : {}),
        ...(options.cpuLimit !== undefined
          ? { cpuLimit: options.cpuLimit === 'none' ? null : numberOption('--cpu-limit', options.cpuLimit) }
          : {}),
        ...(options.pinned ? { pinned: true } : options.unpinned ? { pinned: false } : {}),
        ...(options.group !== undefined ? { group: options.group === 'none' ? null : options.group } : {}),
      };
      if (!Object.keys(patch).length)
        throw new Error(
          'nothing to change: give --target-load, --cpu-limit, --pinned, --unpinned or --group',
        );
      const updated = await clientFor(options).patchVm(id, patch);
      if (options.json) printJson(updated);
      else showVm(updated);
    },
  );
}
