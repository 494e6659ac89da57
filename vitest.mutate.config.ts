// The domain's own tests, without the storage setup: what `npm run mutate` (StrykerJS) runs per mutant.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/unit/domain/**/*.test.ts',
      'test/unit/sim/drain.test.ts',
      // Small coarse clusters against brute force: the swaps and the retry of stalled givers must reach the optimum.
      'test/unit/sim/brute-force.test.ts',
      // The migration protocol's pure decisions (shared/domain/protocol.ts).
      'test/unit/protocol.test.ts',
    ],
    // The golden decisions would kill any change at all; the score should come from tests of behaviour.
    exclude: ['test/unit/domain/golden-decisions.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
    // One mutant after another in the same worker: the domain is pure, so its modules need not be
    // re-imported for every run (Stryker switches mutants at run time).
    isolate: false,
  },
});
