// `seesaw vm create|ls|show|set|suspend|resume|restart|migrate|rm`: the VM lifecycle through the API.
import type { Command } from 'commander';
import { registerVmCreate } from './vm/create.ts';
import {
  registerVmMigrate,
  registerVmRemove,
  registerVmRestart,
  registerVmResume,
  registerVmSuspend,
} from './vm/lifecycle.ts';
import { registerVmList, registerVmSet, registerVmShow } from './vm/read.ts';

export function registerVm(program: Command) {
  const vm = program
    .command('vm')
    .description('create, list, inspect, suspend, resume, migrate and delete VMs');
  registerVmCreate(vm);
  registerVmList(vm);
  registerVmShow(vm);
  registerVmSet(vm);
  registerVmSuspend(vm);
  registerVmResume(vm);
  registerVmRestart(vm);
  registerVmMigrate(vm);
  registerVmRemove(vm);
}
