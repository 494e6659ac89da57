// `seesaw balance [--dry-run]`: run one balancing round now and show what it decided.
import type { Command } from 'commander';
import type { RunRecord } from '../client.ts';
import {
  abbreviate,
  type CommonOptions,
  clientFor,
  count,
  num,
  pct,
  printJson,
  printTable,
  WIDTH,
  withConnection,
  wrap,
} from './output.ts';

/** One run for people: totals, CV as a percentage, every pair with its reason, then the moves. */
export function printRun(run: RunRecord, short: (id: string) => string = abbreviate([run.id])) {
  const orders = run.dryRun
    ? `${count(run.orders.length, 'order')} planned`
    : `${count(run.ordersWritten, 'order')} written${run.ordersLost ? `, ${run.ordersLost} lost` : ''}`;
  console.log(
    `${short(run.id)}${run.dryRun ? ' (dry run)' : ''}: ${count(run.pairs.length, 'pair')}, ${count(run.exchanges, 'exchange')}, ${orders}`,
  );
  console.log(
    `imbalance CV ${pct(run.before.cv)} → ${pct(run.after.cv)} expected, max/mean ${num(run.before.maxOverMean)} → ${num(run.after.maxOverMean)}`,
  );
  if (run.pairs.length) {
    console.log('');
    const pairs = run.pairs.map((p) => [
      `${p.requester} ⇄ ${p.selected}`,
      `${num(p.loads.requester, 2)} ⇄ ${num(p.loads.selected, 2)}`,
      `${p.reason.code}: ${p.reason.detail}`,
    ]);
    // The reason is the last column, wrapped under itself so the table stays within WIDTH.
    const lead = Math.max(4, ...pairs.map((r) => r[0]?.length ?? 0)) + 2;
    const loads = Math.max(5, ...pairs.map((r) => r[1]?.length ?? 0)) + 2;
    const indent = lead + loads;
    console.log(`${'PAIR'.padEnd(lead)}${'LOADS'.padEnd(loads)}REASON`);
    for (const [pair = '', load = '', reason = ''] of pairs)
      console.log(`${pair.padEnd(lead)}${load.padEnd(loads)}${wrap(reason, WIDTH - indent, indent)}`);
    if (run.omitted?.pairs) console.log(`… and ${run.omitted.pairs} more pairs (see --json)`);
  }
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
