// `seesaw runs`: recent balancing runs, newest first.
import type { Command } from 'commander';
import {
  type CommonOptions,
  clientFor,
  num,
  numberOption,
  printJson,
  printTable,
  when,
  withConnection,
} from './output.ts';

export function registerRuns(program: Command) {
  withConnection(
    program
      .command('runs')
      .description('recent balancing runs, newest first')
      .option('--limit <n>', 'how many', '20'),
  ).action(async (options: CommonOptions & { limit: string }) => {
    const { items } = await clientFor(options).listRuns(numberOption('--limit', options.limit, true));
    if (options.json) return printJson(items);
    printTable(
      ['RUN', 'AT', 'ROUND', 'SHARD', 'PAIRS', 'EXCHANGES', 'ORDERS', 'LOST', 'CV BEFORE', 'CV AFTER'],
      items.map((r) => [
        r.id,
        when(r.at),
        r.round,
        `${r.shard}/${r.shards}`,
        r.pairs.length,
        r.exchanges,
        r.ordersWritten,
        r.ordersLost,
        num(r.before.cv),
        num(r.after.cv),
      ]),
      'no runs yet',
    );
  });
}
