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
      const { armExitWatchdog, openResources } = await import('../../bench/handles.ts');
      const since = openResources();
      try {
        const ok = await runBench(suites, { quick: flags.quick === true });
        if (!ok) process.exitCode = 1;
      } finally {
        // The process should now end by itself; if something a suite opened still holds it, the
        // watchdog names it and exits non-zero rather than leave an unattended run hanging.
        armExitWatchdog({ since });
      }
    });
}
