// Property-based hostile input over every operation of the HTTP API (docs/trust-model.md: callers
// are untrusted). The operations come from the app's own /openapi.json, so a new route is fuzzed
// with no edit here. For every answer: no 5xx, no hang; a 4xx is a problem+json whose `status` is
// the HTTP status, and it changed neither the table nor the bucket (nor does any GET). Fixed seeds
// keep it deterministic; SEESAW_FUZZ_RUNS scales the runs. Counterexamples are pinned in
// fuzz-pinned.test.ts.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { aFuzzWorld, runs } from './fuzz-world.ts';

const world = await aFuzzWorld();
beforeAll(() => world.seed());

describe('every operation of /openapi.json, under hostile input', () => {
  it('covers the whole document', () => {
    expect(world.operations.length).toBeGreaterThanOrEqual(28);
  });

  for (const op of world.operations) {
    it(`${op.at}: no 5xx or hang; a 4xx is a problem and changes nothing`, async () => {
      await fc.assert(
        fc.asyncProperty(world.requestOf(op), async (request) => {
          await world.witness.exchange(request);
        }),
        runs(20),
      );
    });
  }
});
