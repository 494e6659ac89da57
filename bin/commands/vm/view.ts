// How the CLI shows VMs: a table row each, or every field of one.
import type { VmView } from '../../client.ts';
import { num, table, when } from '../output.ts';

export function vmRows(vms: VmView[]) {
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
export const VM_HEADERS = [
  'ID',
  'NODE',
  'STATE',
  'GUEST',
  'LOAD',
  'TARGET',
  'PAGES',
  'PINNED',
  'GROUP',
  'REASON',
];

export function showVm(vm: VmView) {
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
