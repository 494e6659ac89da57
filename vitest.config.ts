import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Folders whose files take tens of seconds each, most of it waiting on real clusters, agents and
 * browsers, in the order they start. CI's clone has no record of past durations, so without this the
 * files start in folder order and a long one could start last, with the other worker idle beside it.
 */
const SLOW_FIRST = ['test/fault/', 'test/e2e/', 'test/qemu/'];

/** Vitest's order (failed, then longest first, from its cache), with the slow folders' files first. */
class SlowFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]) {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const path = relative(file.project.config.root, file.moduleId).replaceAll('\\', '/');
      const at = SLOW_FIRST.findIndex((folder) => path.startsWith(folder));
      return at === -1 ? SLOW_FIRST.length : at;
    };
    return sorted
      .map((file, at) => ({ file, at, rank: rank(file) }))
      .sort((a, b) => a.rank - b.rank || a.at - b.at)
      .map(({ file }) => file);
  }
}

/** Options both groups share. */
const shared = {
  globalSetup: ['test/setup/stores.ts'],
  // A guard against hangs, not a speed check: with two workers on a loaded two-core machine (load
  // average 7 from other work) a CPU-bound property test that takes 9 s alone took 40 s.
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: 'forks' as const,
  // XDG_CONFIG_HOME: `seesaw up` in a test records its cluster there, not in the user's config.
  env: { NODE_NO_WARNINGS: '1', XDG_CONFIG_HOME: join(tmpdir(), 'seesaw-test-config') },
};

/**
 * The browser tests run one file at a time, after the rest: two Chromiums beside a live cluster on two
 * loaded cores let a page miss its waits (seen once: the dashboard's dry run and two layout reads).
 */
const ALONE = ['test/browser/**/*.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default', './test/setup/summary-reporter.ts'],
    // Two files at once even on two cores (Vitest's default there is one: cores - 1). The slow files
    // mostly wait (a `seesaw up` cluster uses about 0.6 of a core), so the second worker runs the short
    // files beside them; every file still has its own process, table and bucket. `--maxWorkers=1` or
    // `--no-file-parallelism` on the command line runs one file at a time.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: SlowFirst },
    projects: [
      {
        test: {
          ...shared,
          name: 'tests',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ALONE],
        },
      },
      {
        test: {
          ...shared,
          name: 'browser',
          include: ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
