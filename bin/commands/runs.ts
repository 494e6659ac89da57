// `seesaw runs [ID]`: recent balancing runs, newest first, with ids abbreviated the way git
// abbreviates commits; or one run in full, named by any unambiguous prefix of its id.
import type { Command } from 'commander';
import { printRun } from './balance.ts';
import {
  abbreviate,
  type CommonOptions,
  clientFor,
  clock,
  numberOption,
  pct,
  printJson,
  printTable,
  resolvePrefix,
  withConnection,
} from './output.ts';

export function registerRuns(program: Command) {
  withConnection(
    program
      .command('runs')
      .description('recent balancing runs, newest first; or one run, with every pair and its reason')
      .argument('[id]', 'a run id, or any prefix of it that only one recent run has (e.g. 0mx3npz)')
      .option('--limit <n>', 'how many (with an id: how many recent runs to search)', '20'),
  ).action(async (id: string | undefined, options: CommonOptions & { limit: string }) => {
    const limit = numberOption('--limit', options.limit, true);
    const { items } = await clientFor(options).listRuns(
      id && limit !== undefined ? Math.max(limit, 100) : limit,
    );
    const short = abbreviate(items.map((r) => r.id));
    if (id) {
      const chosen = resolvePrefix(
        id,
        items.map((r) => r.id),
        'run',
      );
      const run = items.find((r) => r.id === chosen);
      if (!run) throw new Error(`run ${chosen} vanished`);
      return options.json ? printJson(run) : printRun(run, short);
    }
    if (options.json) return printJson(items);
    printTable(
      ['RUN', 'AT', 'ROUND', 'SHARD', 'PAIRS', 'EXCHANGES', 'ORDERS', 'LOST', 'CV BEFORE', 'CV AFTER'],
      items.map((r) => [
        short(r.id),
        clock(r.at),
        r.round,
        `${r.shard}/${r.shards}`,
        r.pairs.length,
        r.exchanges,
        r.ordersWritten,
        r.ordersLost,
        pct(r.before.cv),
        pct(r.after.cv),
      ]),
      'no runs yet',
    );
  });
}
