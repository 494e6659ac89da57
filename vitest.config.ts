import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Folders whose files take tens of seconds each, most of it waiting on real clusters, agents and
 * browsers, in the order they start. CI's clone has no record of past durations, so without this the
 * files start in folder order and a long one could start last, with the other worker idle beside it.
 */
const SLOW_FIRST = ['test/fault/', 'test/e2e/', 'test/browser/', 'test/qemu/'];

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

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/stores.ts'],
    reporters: ['default', './test/setup/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at once even on two cores (Vitest's default there is one: cores - 1). The slow files
    // mostly wait (a `seesaw up` cluster uses about 0.6 of a core), so a second worker runs the short
    // files beside them; every file still has its own process, table and bucket.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: SlowFirst },
    // XDG_CONFIG_HOME: `seesaw up` in a test records its cluster there, not in the user's config.
    env: { NODE_NO_WARNINGS: '1', XDG_CONFIG_HOME: join(tmpdir(), 'seesaw-test-config') },
  },
});
