// `seesaw cluster`: node and VM counts, how uneven the load is, and the last balancing run.
import type { Command } from 'commander';
import {
  abbreviate,
  type CommonOptions,
  clientFor,
  count,
  num,
  pct,
  printJson,
  printTable,
  when,
  withConnection,
} from './output.ts';

export function registerCluster(program: Command) {
  withConnection(program.command('cluster').description('the cluster at a glance')).action(
    async (options: CommonOptions) => {
      const cluster = await clientFor(options).cluster();
      if (options.json) return printJson(cluster);
      const { nodes, vms, imbalance, lastRun } = cluster;
      console.log(
        `nodes      ${nodes.live} live of ${nodes.total}${nodes.draining ? `, ${nodes.draining} draining` : ''}`,
      );
      const states = Object.entries(vms.byState)
        .filter(([, n]) => n > 0)
        .map(([state, n]) => `${n} ${state.toLowerCase()}`)
        .join(', ');
      console.log(
        `VMs        ${vms.total}${states ? ` (${states})` : ''}${vms.migrating ? `, ${vms.migrating} migrating` : ''}`,
      );
      console.log(
        `imbalance  CV ${pct(imbalance.cv)}, max/mean ${num(imbalance.maxOverMean)} (mean load ${num(imbalance.mean)})`,
      );
      console.log(
        `last run   ${lastRun ? `${abbreviate([lastRun.id])(lastRun.id)} at ${when(lastRun.at)}: ${count(lastRun.exchanges, 'exchange')}, ${count(lastRun.ordersWritten, 'order')}` : 'none yet'}`,
      );
      const loads = Object.entries(cluster.loads);
      if (loads.length) {
        console.log('');
        const max = Math.max(...loads.map(([, l]) => l), 1e-9);
        printTable(
          ['NODE', 'LOAD', ''],
          loads.map(([id, load]) => [id, num(load), '#'.repeat(Math.round((load / max) * 30))]),
        );
      }
    },
  );
}
