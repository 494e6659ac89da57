// `seesaw balance [--dry-run | --apply ID | --plans]`: run one balancing round now, or only decide it
// and keep the plan, or order exactly a reviewed plan's moves.
import type { Command } from 'commander';
import type { Plan, RunRecord } from '../client.ts';
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
  when,
  withConnection,
  wrap,
} from './output.ts';

/** One run for people: totals, CV as a percentage, every pair with its reason, then the moves. */
export function printRun(
  run: RunRecord & { plan?: Plan },
  short: (id: string) => string = abbreviate([run.id]),
) {
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
  if (run.plan) {
    console.log('');
    console.log(
      `plan ${run.plan.id}: ${count(run.plan.moves.length, 'move')}, valid until ${when(run.plan.expiresAt)}`,
    );
    if (run.plan.moves.length) console.log(`apply exactly these: seesaw balance --apply ${run.plan.id}`);
  }
}

function printApplied(plan: Plan) {
  const outcome = plan.outcome ?? [];
  const written = outcome.filter((o) => o.outcome === 'written').length;
  console.log(`plan ${plan.id} applied: ${written} of ${plan.moves.length} order(s) written`);
  if (outcome.length) {
    console.log('');
    printTable(
      ['VM', 'MIGRATION', 'OUTCOME', 'DETAIL'],
      outcome.map((o) => [o.vm, o.migration, o.outcome, o.detail ?? '']),
    );
  }
}

function printPlans(plans: Plan[], now: number) {
  printTable(
    ['PLAN', 'STATUS', 'MOVES', 'CREATED', 'EXPIRES'],
    plans.map((p) => [
      p.id,
      p.status === 'open' && p.expiresAt <= now ? 'expired' : p.status,
      p.moves.map((m) => `${m.vm} ${m.from}→${m.to}`).join(', ') || '-',
      when(p.createdAt),
      when(p.expiresAt),
    ]),
  );
}

type BalanceOptions = CommonOptions & { dryRun?: boolean; apply?: string; plans?: boolean };

export function registerBalance(program: Command) {
  withConnection(
    program
      .command('balance')
      .description('run one balancing round now, or decide it and keep the plan, or apply a plan')
      .option('--dry-run', 'decide the round and show its plan, but write no orders')
      .option('--apply <plan>', 'order exactly the moves of a plan a dry run returned')
      .option('--plans', 'list the plans of recent dry runs'),
  ).action(async (options: BalanceOptions) => {
    const chosen = [options.dryRun, options.apply !== undefined, options.plans].filter(Boolean).length;
    if (chosen > 1) throw new Error('choose one of --dry-run, --apply and --plans');
    const client = clientFor(options);
    if (options.apply !== undefined) {
      const plan = await client.applyPlan(options.apply);
      if (options.json) printJson(plan);
      else printApplied(plan);
      return;
    }
    if (options.plans) {
      const page = await client.listPlans(20);
      if (options.json) printJson(page.items);
      else printPlans(page.items, Date.now());
      return;
    }
    const run = await client.balance(!!options.dryRun);
    if (options.json) printJson(run);
    else printRun(run);
  });
}
