// `seesaw balance [--dry-run]`: run one balancing round now and show what it decided.
import type { Command } from 'commander';
import type { RunRecord } from '../client.ts';
import { type CommonOptions, clientFor, num, printJson, printTable, withConnection } from './output.ts';

export function printRun(run: RunRecord) {
  console.log(
    `${run.id}${run.dryRun ? ' (dry run)' : ''}: ${run.pairs.length} pairs, ${run.exchanges} exchanges, ` +
      `${run.ordersWritten} orders written${run.ordersLost ? `, ${run.ordersLost} lost` : ''}`,
  );
  console.log(
    `imbalance CV ${num(run.before.cv)} → ${num(run.after.cv)} expected, max/mean ${num(run.before.maxOverMean)} → ${num(run.after.maxOverMean)}`,
  );
  const moves = run.pairs.flatMap((p) => p.moves);
  if (moves.length) {
    console.log('');
    printTable(
      ['VM', 'FROM', 'TO', 'LOAD ON SOURCE', 'LOAD ON TARGET'],
      moves.map((m) => [m.vm, m.from, m.to, num(m.loadOnSource), num(m.loadOnTarget)]),
    );
  }
}

export function registerBalance(program: Command) {
  withConnection(
    program
      .command('balance')
      .description('run one balancing round now')
      .option('--dry-run', 'decide the round and show it, but write nothing'),
  ).action(async (options: CommonOptions & { dryRun?: boolean }) => {
    const run = await clientFor(options).balance(!!options.dryRun);
    if (options.json) printJson(run);
    else printRun(run);
  });
}
