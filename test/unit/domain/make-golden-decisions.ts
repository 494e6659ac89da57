// The golden decisions: decideRound on fixed seeded clusters with every policy, constraint and limit,
// recorded in golden-decisions.json so that a refactor or a speed-up that changes a decision fails
// golden-decisions.test.ts. After an intended change of decisions, regenerate and review the diff:
//   npx tsx test/unit/domain/make-golden-decisions.ts
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decideRound } from '../../../shared/domain/decide.ts';
import { createRng, randomInt } from '../../../shared/domain/rng.ts';
import type {
  BalancingConfig,
  NodeInfo,
  Rng,
  RoundDecision,
  RoundInput,
  VmInfo,
} from '../../../shared/domain/types.ts';
import { builtinScenario } from '../../../shared/sim/scenarios.ts';
import { aConfig, aNode, aVm } from './fixtures.ts';

export interface GoldenCase {
  name: string;
  input: RoundInput;
  config: BalancingConfig;
  /** The seed of the round's own Rng (pairing). */
  seed: number;
}

export interface GoldenFile {
  cases: { name: string; decision: RoundDecision }[];
}

export const GOLDEN_PATH = fileURLToPath(new URL('./golden-decisions.json', import.meta.url));

/** How many random clusters the golden file records. */
const RANDOM_CASES = 200;

const pick = <T>(rng: Rng, items: readonly T[]): T => items[randomInt(rng, items.length)] as T;
const between = (rng: Rng, min: number, max: number): number => min + randomInt(rng, max - min + 1);
/** A value one time in `freq`, otherwise null (fast-check's `option`). */
const option = <T>(rng: Rng, freq: number, value: () => T): T | null =>
  randomInt(rng, freq) === 0 ? null : value();

function randomConfig(rng: Rng): BalancingConfig {
  return aConfig({
    pairing: pick(rng, ['random', 'round-robin', 'sender', 'receiver', 'symmetric', 'spread'] as const),
    withRandom: pick(rng, [false, true]),
    selection: pick(rng, ['best-balance', 'half-diff', 'target', 'largest'] as const),
    thresholdFactor: pick(rng, [1, 1.05, 1.2]),
    margin: pick(rng, [0, 1]),
    direction: pick(rng, ['both', 'push-only'] as const),
    multiVm: pick(rng, [false, true]),
    maxMovesPerExchange: between(rng, 1, 8),
    maxMigrationsPerNode: between(rng, 1, 8),
    maxMigrationsPerCluster: between(rng, 1, 30),
    aim: pick(rng, ['pair', 'mean'] as const),
    trigger: pick(rng, ['difference', 'headroom', 'auto'] as const),
    highThreshold: pick(rng, [0.5, 0.8, 0.9]),
  });
}

/** 2–10 nodes and up to 40 VMs with weights, drains, overrides, memory, pins, groups, cooldowns, targets. */
function randomInput(rng: Rng): RoundInput {
  const nodeCount = between(rng, 2, 10);
  const nodes: NodeInfo[] = [];
  const inFlight: Record<string, number> = {};
  const expected: Record<string, number> = {};
  for (let i = 0; i < nodeCount; i++) {
    const override = option(rng, 8, () => between(rng, 0, 300));
    nodes.push(
      aNode({
        id: `n${i}`,
        weights: { cpu: pick(rng, [0.5, 1, 1, 2, 11]), io: 0, mem: 0 },
        draining: pick(rng, [false, false, false, false, true]),
        capacity: pick(rng, [50, 100, 200]),
        memCapacityPages: pick(rng, [1_000_000, 100, 64]),
        ...(override !== null ? { loadOverride: override } : {}),
      }),
    );
    inFlight[`n${i}`] = pick(rng, [0, 0, 0, 1, 8]);
    const wanted = option(rng, 2, () => between(rng, 0, 300));
    if (wanted !== null) expected[`n${i}`] = wanted;
  }
  const vms: VmInfo[] = [];
  const vmCount = between(rng, 0, 40);
  for (let i = 0; i < vmCount; i++) {
    const group = option(rng, 4, () => pick(rng, ['g1', 'g2']));
    const target = option(rng, 2, () => between(rng, 1, 60));
    vms.push(
      aVm({
        id: `v${i}`,
        node: `n${randomInt(rng, nodeCount)}`,
        load: between(rng, 1, 60),
        memPages: pick(rng, [16, 32, 48]),
        pinned: randomInt(rng, 7) === 0,
        busy: randomInt(rng, 7) === 0,
        ...(randomInt(rng, 5) === 0 ? { cooldownUntil: 2_000_000 } : {}),
        ...(group !== null ? { group } : {}),
        ...(target !== null ? { targetLoad: target } : {}),
      }),
    );
  }
  return { nodes, vms, round: randomInt(rng, 1001), now: 1_000_000, inFlight, expected };
}

/** The same round without in-flight counts and expectations, each node's VMs listed together. */
function bareAndGrouped(input: RoundInput): RoundInput {
  const { inFlight: _f, expected: _e, ...rest } = input;
  return { ...rest, vms: [...input.vms].sort((a, b) => a.node.localeCompare(b.node)) };
}

/** Every recorded case, built afresh from fixed seeds (the same on every run and platform). */
export function goldenCases(): GoldenCase[] {
  const cases: GoldenCase[] = [];
  for (let k = 0; k < RANDOM_CASES; k++) {
    const rng = createRng(1_000 + k);
    const input = randomInput(rng);
    const config = randomConfig(rng);
    const seed = randomInt(rng, 2 ** 31);
    cases.push({ name: `random-${k}`, input, config, seed });
    if (k % 2 === 0)
      cases.push({ name: `random-${k}-bare-grouped`, input: bareAndGrouped(input), config, seed });
  }
  const skewed = builtinScenario('skewed', createRng(7), { nodes: 300, vms: 3000 });
  cases.push({
    name: 'skewed-300x3000-defaults',
    input: { nodes: skewed.nodes, vms: skewed.vms, round: 3, now: 60_000 },
    config: aConfig({ thresholdFactor: 1.05, margin: 0.05 }),
    seed: 3,
  });
  return cases;
}

/** What decideRound decides for a case, as the golden file stores it (plain JSON). */
export function decideCase(c: GoldenCase): RoundDecision {
  return JSON.parse(JSON.stringify(decideRound(c.input, c.config, createRng(c.seed))));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const cases = goldenCases().map((c) => JSON.stringify({ name: c.name, decision: decideCase(c) }));
  // One case a line, so that a changed decision shows as a changed line (biome leaves the file as it is).
  writeFileSync(GOLDEN_PATH, `{"cases": [\n${cases.join(',\n')}\n]}\n`);
  console.log(`${cases.length} golden decisions written to ${GOLDEN_PATH}`);
}
