// The domain's own tests, without the storage setup: what `npm run mutate` (StrykerJS) runs per mutant.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/domain/**/*.test.ts', 'test/unit/sim/drain.test.ts'],
    // The golden decisions would kill any change at all; the score should come from tests of behaviour.
    exclude: ['test/unit/domain/golden-decisions.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
  },
});
