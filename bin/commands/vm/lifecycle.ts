// `seesaw vm suspend|resume|restart|migrate|rm`: lifecycle requests, each optionally followed
// until the VM gets where the request sends it.
import type { Command } from 'commander';
import type { VmView } from '../../client.ts';
import {
  type CommonOptions,
  clientFor,
  numberOption,
  printJson,
  waitForVm,
  withConnection,
} from '../output.ts';

interface WaitOptions extends CommonOptions {
  wait: boolean;
  timeout: string;
}

function waitOptions(command: Command) {
  return command
    .option('--no-wait', 'return once the API accepted the request')
    .option('--timeout <seconds>', 'how long to wait', '120');
}

const timeoutMs = (options: WaitOptions) => (numberOption('--timeout', options.timeout) ?? 120) * 1000;

export function registerVmSuspend(vm: Command) {
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
}

/** `resume` and `restart`: the VM runs again, on the node given or where the API places it. */
function registerStartAgain(
  vm: Command,
  command: { name: string; description: string; node: string; doing: string },
  request: (client: ReturnType<typeof clientFor>, id: string, node: string | undefined) => Promise<VmView>,
) {
  waitOptions(
    withConnection(
      vm.command(`${command.name} <id>`).description(command.description).option('--node <id>', command.node),
    ),
  ).action(async (id: string, options: WaitOptions & { node?: string }) => {
    const client = clientFor(options);
    let current: VmView | undefined = await request(client, id, options.node);
    if (options.wait) current = await waitUntilRunning(client, id, current.fence, options);
    if (options.json) printJson(current);
    else
      console.log(`${id} ${current?.state === 'RUNNING' ? 'running' : command.doing} on ${current?.owner}`);
  });
}

export function registerVmResume(vm: Command) {
  registerStartAgain(
    vm,
    {
      name: 'resume',
      description: 'run a suspended VM again from its image',
      node: 'resume on this node (default: where the balancer would leave it)',
      doing: 'resuming',
    },
    (client, id, node) => client.resumeVm(id, node),
  );
}

export function registerVmRestart(vm: Command) {
  registerStartAgain(
    vm,
    {
      name: 'restart',
      description: 'give a FAILED VM a fresh try from its last image',
      node: 'restart on this node (default: its own node if live, else the least-loaded)',
      doing: 'restarting',
    },
    (client, id, node) => client.restartVm(id, node),
  );
}

export function registerVmMigrate(vm: Command) {
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
}

export function registerVmRemove(vm: Command) {
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
