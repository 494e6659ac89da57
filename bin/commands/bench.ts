// `seesaw bench` (= `npm run bench`): run the benchmark suites and write bench/results.json.
import type { Command } from 'commander';

export function registerBench(program: Command) {
  program
    .command('bench')
    .description('run the benchmark suites (all, or the named ones), print a table, write bench/results.json')
    .argument('[suites...]', 'suite names (files in bench/suites)')
    .option('--quick', 'smaller sizes, for a fast look')
    .action(async (suites: string[], flags: { quick?: boolean }) => {
      const { runBench } = await import('../../bench/index.ts');
      const ok = await runBench(suites, { quick: flags.quick === true });
      if (!ok) process.exitCode = 1;
    });
}
