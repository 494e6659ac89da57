// `seesaw vm create`: flags → a CreateVm request → the API.
import type { Command } from 'commander';
import { BUILTIN_GUESTS } from '../../../shared/domain/guests.ts';
import type { CreateVmRequest } from '../../client.ts';
import { type CommonOptions, clientFor, numberOption, printJson, withConnection } from '../output.ts';

const collect = (value: string, previous: string[] = []) => [...previous, value];

function parseParams(pairs: string[] | undefined): Record<string, number> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, number> = {};
  for (const pair of pairs) {
    const [key, value] = pair.split('=');
    const n = Number(value);
    if (!key || value === undefined || !Number.isFinite(n))
      throw new Error(`--param wants name=number, got "${pair}"`);
    out[key] = n;
  }
  return out;
}

export function registerVmCreate(vm: Command) {
  withConnection(
    vm
      .command('create')
      .description(
        `launch a VM from a built-in guest (${BUILTIN_GUESTS.join(', ')}), module:<name> or qemu:<image>`,
      )
      .requiredOption('--guest <kind>', [...BUILTIN_GUESTS, 'module:<name>', 'qemu:<image>'].join(' | '))
      .option('--node <id>', 'place it on this node (default: where the balancer would leave it)')
      .option('--target-load <load>', 'programmed target load (Fig. 7): guides selection, does not limit')
      .option('--cpu-limit <cores>', 'cores the VM may use at most, enforced by the kernel (e.g. 0.5)')
      .option('--mem-pages <n>', 'linear memory, in 64 KiB pages')
      .option('--group <name>', 'anti-affinity group')
      .option('--pinned', 'never move it')
      .option('--param <name=value>', 'a guest parameter (repeatable)', collect)
      .option('--series <list>', 'for trace: comma-separated utilisation percents')
      .option('--restart <policy>', "what a failure of the guest does: 'never' (default) or 'on-failure'")
      .option('--max-retries <n>', 'with --restart on-failure: retries before the VM is FAILED (default 5)'),
  ).action(
    async (
      options: CommonOptions & {
        guest: string;
        node?: string;
        targetLoad?: string;
        cpuLimit?: string;
        memPages?: string;
        group?: string;
        pinned?: boolean;
        param?: string[];
        series?: string;
        restart?: string;
        maxRetries?: string;
      },
    ) => {
      const client = clientFor(options);
      const params = parseParams(options.param);
      const targetLoad = numberOption('--target-load', options.targetLoad);
      const memPages = numberOption('--mem-pages', options.memPages, true);
      if (options.restart !== undefined && options.restart !== 'never' && options.restart !== 'on-failure')
        throw new Error(`--restart wants 'never' or 'on-failure', got "${options.restart}"`);
      const maxRetries = numberOption('--max-retries', options.maxRetries, true);
      if (maxRetries !== undefined && options.restart !== 'on-failure')
        throw new Error('--max-retries needs --restart on-failure');
      const cpuLimit = numberOption('--cpu-limit', options.cpuLimit);
      const body: CreateVmRequest = {
        guest: options.guest,
        ...(options.node ? { node: options.node } : {}),
        ...(targetLoad !== undefined ? { targetLoad } : {}),
        ...(cpuLimit !== undefined ? { cpuLimit } : {}),
        ...(memPages !== undefined ? { memPages } : {}),
        ...(options.group ? { group: options.group } : {}),
        ...(options.pinned ? { pinned: true } : {}),
        ...(params ? { params } : {}),
        ...(options.series
          ? { series: options.series.split(',').map((s) => numberOption('--series', s.trim()) ?? 0) }
          : {}),
        ...(options.restart
          ? {
              restartPolicy: {
                kind: options.restart as 'never' | 'on-failure',
                ...(maxRetries !== undefined ? { maxRetries } : {}),
              },
            }
          : {}),
      };
      const created = await client.createVm(body);
      if (options.json) printJson(created);
      else console.log(`created ${created.id} on ${created.owner} (${created.state})`);
    },
  );
}
