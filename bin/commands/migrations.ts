// `seesaw migrations`: migration history with bytes moved and downtime. BY is `api` or the run
// that ordered the move, abbreviated like `seesaw runs` shows it; --json has the full ids.
import type { Command } from 'commander';
import {
  abbreviate,
  type CommonOptions,
  clientFor,
  clock,
  numberOption,
  printJson,
  printTable,
  withConnection,
} from './output.ts';

const kib = (bytes: number) => (bytes / 1024).toFixed(0);

export function registerMigrations(program: Command) {
  withConnection(
    program
      .command('migrations')
      .description('migration history, newest first')
      .option('--vm <id>', "only this VM's migrations")
      .option('--limit <n>', 'how many', '50'),
  ).action(async (options: CommonOptions & { vm?: string; limit: string }) => {
    const { items } = await clientFor(options).listMigrations({
      limit: numberOption('--limit', options.limit, true),
      ...(options.vm ? { vm: options.vm } : {}),
    });
    if (options.json) return printJson(items);
    const by = abbreviate(items.map((m) => m.origin));
    printTable(
      ['VM', 'MOVE', 'BY', 'OUTCOME', 'ENDED', 'PRECOPY+FINAL', 'DOWNTIME', 'TOTAL'],
      items.map((m) => [
        m.vm,
        `${m.from}→${m.to}`,
        by(m.origin),
        m.outcome,
        clock(m.endedAt),
        m.bytes ? `${kib(m.bytes.precopy)}+${kib(m.bytes.final)} KiB` : '-',
        m.downtimeMs !== undefined ? `${m.downtimeMs} ms` : '-',
        `${m.totalMs} ms`,
      ]),
      'no migrations yet',
    );
  });
}
