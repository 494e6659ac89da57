// `seesaw vm create|ls|show|set|suspend|resume|restart|migrate|rm`: the VM lifecycle through the API.
import type { Command } from 'commander';
import { BUILTIN_GUESTS } from '../../shared/domain/guests.ts';
import type { CreateVmRequest, VmView } from '../client.ts';
import {
  type CommonOptions,
  clientFor,
  num,
  numberOption,
  printJson,
  printTable,
  table,
  waitForVm,
  when,
  withConnection,
} from './output.ts';

interface WaitOptions extends CommonOptions {
  wait: boolean;
  timeout: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function vmRows(vms: VmView[]) {
  return vms.map((vm) => [
    vm.id,
    vm.owner,
    vm.state + (vm.migration ? ` → ${vm.migration.to} (${vm.migration.phase})` : ''),
    vm.guest.kind,
    num(vm.load),
    num(vm.targetLoad),
    vm.memPages,
    vm.pinned ? 'yes' : '',
    vm.group ?? '',
    vm.reason
      ? `${vm.reason}${vm.state === 'PENDING' && vm.retryAt ? ` (retry at ${when(vm.retryAt)})` : ''}`
      : '',
  ]);
}
const VM_HEADERS = ['ID', 'NODE', 'STATE', 'GUEST', 'LOAD', 'TARGET', 'PAGES', 'PINNED', 'GROUP', 'REASON'];

function showVm(vm: VmView) {
  const f = vm.factors;
  console.log(
    table(
      ['FIELD', 'VALUE'],
      [
        ['id', vm.id],
        ['owner', vm.owner],
        ['state', vm.state],
        ['guest', `${vm.guest.kind}${vm.guest.params ? ` ${JSON.stringify(vm.guest.params)}` : ''}`],
        ['load', num(vm.load)],
        ['factors', f ? `cpu ${num(f.cpu)}  io ${num(f.io)}  mem ${num(f.mem)}` : '-'],
        ['target load', `${num(vm.targetLoad)}  (Fig. 7 selection and sharing weight; not a limit)`],
        ['cpu limit', vm.cpuLimit === null ? 'none (may use a whole core)' : `${num(vm.cpuLimit)} cores`],
        ['memory', `${vm.memPages} pages (${num((vm.memPages * 64) / 1024, 2)} MiB)`],
        ['pinned', vm.pinned ? 'yes' : 'no'],
        ['group', vm.group ?? '-'],
        ['fence', vm.fence],
        ['digest', vm.digest ?? '-'],
        [
          'migration',
          vm.migration
            ? `${vm.migration.id} ${vm.migration.from} → ${vm.migration.to} ${vm.migration.phase} (by ${vm.migration.origin})`
            : '-',
        ],
        ['moves', vm.moves],
        [
          'restart policy',
          vm.restartPolicy.kind === 'on-failure'
            ? `on-failure (at most ${vm.restartPolicy.maxRetries ?? 5} retries)`
            : vm.restartPolicy.kind,
        ],
        ['reason', vm.reason ?? '-'],
        ['failures', vm.failures],
        ['retry at', when(vm.retryAt)],
        [
          'image recovery',
          vm.recovery
            ? `${vm.recovery.lostSeconds} s of guest work lost: ${vm.recovery.why} (restored ${vm.recovery.restored})`
            : '-',
        ],
        ['reported', when(vm.reportedAt)],
        ['created', when(vm.createdAt)],
      ],
    ),
  );
}

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

function waitOptions(command: Command) {
  return command
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait', '120');
}

const timeoutMs = (options: WaitOptions) => (numberOption('--timeout', options.timeout) ?? 120) * 1000;

export function registerVm(program: Command) {
  const vm = program
    .command('vm')
    .description('create, list, inspect, suspend, resume, migrate and delete VMs');

  withConnection(
    vm
      .command('create')
      .description(`launch a VM from a built-in guest (${BUILTIN_GUESTS.join(', ')}) or module:<name>`)
      .requiredOption('--guest <kind>', [...BUILTIN_GUESTS, 'module:<name>'].join(' | '))
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

  withConnection(vm.command('show <id>').description('show one VM')).action(
    async (id: string, options: CommonOptions) => {
      const found = await clientFor(options).getVm(id);
      if (options.json) printJson(found);
      else showVm(found);
    },
  );

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

  waitOptions(
    withConnection(
      vm.command('suspend <id>').description('write the whole VM state to its image and stop it'),
    ),
  ).action(async (id: string, options: WaitOptions) => {
    const client = clientFor(options);
    let current: VmView | undefined = await client.suspendVm(id);
    if (options.wait)
      current = await waitForVm(
        client,
        id,
        [
          { label: 'SUSPENDING', reached: (v) => v?.state === 'SUSPENDING' || v?.state === 'SUSPENDED' },
          { label: 'SUSPENDED', reached: (v) => v?.state === 'SUSPENDED' },
        ],
        {
          timeoutMs: timeoutMs(options),
          quiet: !!options.json,
          failed: (v) => (v ? undefined : `${id} disappeared`),
        },
      );
    if (options.json) printJson(current);
    else console.log(`${id} ${current?.state === 'SUSPENDED' ? 'suspended' : 'is suspending'}`);
  });

  waitOptions(
    withConnection(
      vm
        .command('resume <id>')
        .description('run a suspended VM again from its image')
        .option('--node <id>', 'resume on this node (default: where the balancer would leave it)'),
    ),
  ).action(async (id: string, options: WaitOptions & { node?: string }) => {
    const client = clientFor(options);
    let current: VmView | undefined = await client.resumeVm(id, options.node);
    if (options.wait) current = await waitUntilRunning(client, id, current.fence, options);
    if (options.json) printJson(current);
    else console.log(`${id} ${current?.state === 'RUNNING' ? 'running' : 'resuming'} on ${current?.owner}`);
  });

  waitOptions(
    withConnection(
      vm
        .command('restart <id>')
        .description('give a FAILED VM a fresh try from its last image')
        .option('--node <id>', 'restart on this node (default: its own node if live, else the least-loaded)'),
    ),
  ).action(async (id: string, options: WaitOptions & { node?: string }) => {
    const client = clientFor(options);
    let current: VmView | undefined = await client.restartVm(id, options.node);
    if (options.wait) current = await waitUntilRunning(client, id, current.fence, options);
    if (options.json) printJson(current);
    else console.log(`${id} ${current?.state === 'RUNNING' ? 'running' : 'restarting'} on ${current?.owner}`);
  });

  waitOptions(
    withConnection(
      vm
        .command('migrate <id>')
        .description('move a running VM to another node')
        .option('--to <node>', "target node, or 'auto' for the best placement", 'auto'),
    ),
  ).action(async (id: string, options: WaitOptions & { to: string }) => {
    const client = clientFor(options);
    let current: VmView | undefined = await client.migrateVm(id, options.to);
    const order = current.migration;
    if (!order) throw new Error(`the API accepted the migration of ${id} but shows no order`);
    if (options.wait)
      current = await waitForVm(
        client,
        id,
        [
          { label: `ORDERED → ${order.to}`, reached: () => true },
          {
            label: 'IMAGE_READY',
            reached: (v) => v?.migration?.phase === 'IMAGE_READY' || v?.owner === order.to,
          },
          {
            label: `running on ${order.to}`,
            reached: (v) => v?.owner === order.to && v.state === 'RUNNING' && !v.migration,
          },
        ],
        {
          timeoutMs: timeoutMs(options),
          quiet: !!options.json,
          failed: (v) => {
            if (!v) return `${id} disappeared during the migration`;
            if (!v.migration && v.owner !== order.to)
              return `migration ${order.id} was aborted; ${id} stays on ${v.owner}`;
            return undefined;
          },
        },
      );
    if (options.json) printJson(current);
    else
      console.log(
        current?.owner === order.to
          ? `${id} now runs on ${order.to}`
          : `${id} is migrating ${order.from} → ${order.to}`,
      );
  });

  waitOptions(
    withConnection(vm.command('rm <id>').description('stop a VM and delete it with its image')),
  ).action(async (id: string, options: WaitOptions) => {
    const client = clientFor(options);
    const pending = await client.deleteVm(id);
    if (pending && options.wait)
      await waitForVm(
        client,
        id,
        [
          { label: 'DELETING', reached: () => true },
          { label: 'deleted', reached: (v) => v === undefined },
        ],
        { timeoutMs: timeoutMs(options), quiet: !!options.json },
      );
    const gone = !pending || options.wait;
    if (options.json) printJson({ id, deleted: gone });
    else console.log(gone ? `deleted ${id}` : `${id} is being deleted`);
  });
}

/** Waits for a VM started again (resume, restart) to run under the fence its request gave it. */
function waitUntilRunning(
  client: ReturnType<typeof clientFor>,
  id: string,
  fence: number,
  options: WaitOptions,
) {
  return waitForVm(
    client,
    id,
    [
      { label: 'PENDING', reached: (v) => !!v && v.fence >= fence },
      { label: 'RUNNING', reached: (v) => v?.state === 'RUNNING' },
    ],
    {
      timeoutMs: timeoutMs(options),
      quiet: !!options.json,
      failed: (v) =>
        !v ? `${id} disappeared` : v.state === 'FAILED' ? `${id} failed: ${v.reason}` : undefined,
    },
  );
}
