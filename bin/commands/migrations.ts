// `seesaw migrations`: migration history with bytes moved and downtime.
import type { Command } from 'commander';
import {
  type CommonOptions,
  clientFor,
  numberOption,
  printJson,
  printTable,
  when,
  withConnection,
} from './output.ts';

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

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
    printTable(
      ['MIGRATION', 'VM', 'FROM', 'TO', 'BY', 'OUTCOME', 'ENDED', 'PRECOPY', 'FINAL', 'DOWNTIME', 'TOTAL'],
      items.map((m) => [
        m.id,
        m.vm,
        m.from,
        m.to,
        m.origin,
        m.outcome,
        when(m.endedAt),
        m.bytes ? kib(m.bytes.precopy) : '-',
        m.bytes ? kib(m.bytes.final) : '-',
        m.downtimeMs !== undefined ? `${m.downtimeMs} ms` : '-',
        `${m.totalMs} ms`,
      ]),
      'no migrations yet',
    );
  });
}
