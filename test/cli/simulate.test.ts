// `seesaw simulate`: every flag reaches the run as the config field or input it names, so the CLI
// prints what the simulator gives for the same arguments.
import { describe, expect, it } from 'vitest';
import { runSimulation, seriesJson } from '../../shared/sim/run.ts';
import { seesaw } from './support.ts';

describe('seesaw simulate', () => {
  it('passes the input and config flags to the run under their config names', async () => {
    // Each flag beside its value; `--no-with-random` and `--json` take none.
    const flags = [
      ['--scenario', 'skewed'],
      ['--nodes', '8'],
      ['--vms', '40'],
      ['--rounds', '6'],
      ['--seed', '7'],
      ['--policy', 'sender'],
      ['--threshold', '1.1'],
      ['--max-moves', '2'],
      ['--per-node', '3'],
      ['--aim', 'mean'],
    ];
    const out = await seesaw(['simulate', ...flags.flat(), '--no-with-random', '--json']);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const { result, series } = runSimulation({
      scenario: 'skewed',
      nodes: 8,
      vms: 40,
      rounds: 6,
      seed: 7,
      estimate: 'last',
      greedy: true,
      config: {
        pairing: 'sender',
        withRandom: false,
        thresholdFactor: 1.1,
        maxMovesPerExchange: 2,
        maxMigrationsPerNode: 3,
        aim: 'mean',
      },
    });
    const expected = JSON.parse(JSON.stringify({ ...result, series: seriesJson(series, result.lowerBound) }));
    expect(JSON.parse(out.stdout)).toEqual(expected);
    // The config flags change the run, so a flag dropped on the way would show above.
    const plain = runSimulation({ scenario: 'skewed', nodes: 8, vms: 40, rounds: 6, seed: 7, config: {} });
    expect(JSON.stringify(plain.result)).not.toBe(JSON.stringify(result));
  });

  it('refuses a bad flag value with a message and a non-zero exit', async () => {
    const out = await seesaw(['simulate', '--policy', 'sideways']);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('expected one of random');
  });
});
