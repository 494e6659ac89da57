import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/stores.ts'],
    reporters: ['default', './test/setup/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // XDG_CONFIG_HOME: `seesaw up` in a test records its cluster there, not in the user's config.
    env: { NODE_NO_WARNINGS: '1', XDG_CONFIG_HOME: join(tmpdir(), 'seesaw-test-config') },
  },
});
