import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { clusterFromHistory, historyRounds, replayHistory } from '../../../shared/sim/history.ts';
import { runSimulation } from '../../../shared/sim/run.ts';
import { aPair } from '../../support/records.ts';

/** Two run records as `seesaw runs --json` prints them (only the fields replay reads, plus a few). */
const runs = [
  {
    id: 'r1',
    round: 1,
    shard: 0,
    shards: 1,
    dryRun: false,
    pairs: [
      aPair('a', 'b', [120, 80], {
        moves: [{ vm: 'v20', from: 'a', to: 'b', loadOnSource: 20, loadOnTarget: 20 }],
        reason: { code: 'moved', detail: '' },
        predicted: { requester: 100, selected: 100 },
      }),
      aPair('c', 'd', [60, 40], { reason: { code: 'below-threshold', detail: '' } }),
    ],
    orders: [{ vm: 'v20', outcome: 'written' }],
  },
  {
    id: 'r2',
    round: 2,
    dryRun: false,
    // Only what replay reads: a pair needs no reason or prediction.
    pairs: [
      {
        requester: 'a',
        selected: 'd',
        loads: { requester: 100, selected: 40 },
        moves: [{ vm: 'v30', from: 'a', to: 'd', loadOnSource: 30, loadOnTarget: 30 }],
      },
    ],
    orders: [{ vm: 'v30', outcome: 'lost' }],
  },
];

const options = { seed: 1, config: DEFAULT_BALANCING_CONFIG, intervalMs: 60_000 };

describe('history replay', () => {
  it('reads run records into rounds, counting only the orders that were written', () => {
    const rounds = historyRounds(runs, 'h.json');
    expect(rounds.map((r) => r.round)).toEqual([1, 2]);
    expect(rounds[0]?.nodes).toEqual([
      { id: 'a', load: 120 },
      { id: 'b', load: 80 },
      { id: 'c', load: 60 },
      { id: 'd', load: 40 },
    ]);
    expect(rounds[1]?.moves).toEqual([]);
  });

  it('rebuilds the first round’s loads from known VMs plus filler', () => {
    const scenario = clusterFromHistory(historyRounds(runs, 'h.json'), 'h.json');
    const load = (node: string) =>
      scenario.vms.filter((v) => v.node === node).reduce((s, v) => s + v.factors.cpu, 0);
    expect(['a', 'b', 'c', 'd'].map(load)).toEqual([120, 80, 60, 40]);
    expect(scenario.vms.find((v) => v.id === 'v20')).toMatchObject({ node: 'a', factors: { cpu: 20 } });
  });

  it('replays under another policy beside what was recorded', () => {
    const { result } = replayHistory(runs, 'h.json', options);
    expect(result.recorded).toMatchObject({ rounds: 2, migrations: 1 });
    expect(result.rounds).toBe(2);
    expect(result.final.cv).toBeLessThan(result.initial.cv);
  });

  it('accepts the simple rounds form with VMs', () => {
    const simple = {
      rounds: [
        {
          round: 5,
          nodes: [
            { id: 'a', load: 120 },
            { id: 'b', load: 80 },
          ],
          vms: [10, 20, 45, 45]
            .map((load, i) => ({ id: `v${i}`, node: 'a', load }))
            .concat([{ id: 'w', node: 'b', load: 80 }]),
          moves: [],
        },
      ],
    };
    const { result } = replayHistory(simple, 's.json', { ...options, rounds: 1 });
    expect(result.moves).toEqual([{ round: 1, vm: 'v1', from: 'a', to: 'b' }]);
  });

  it('says what it expected when the file is not a history', () => {
    expect(() => historyRounds({ nodes: [] }, 'x.json')).toThrow(/x\.json: not a run history/);
  });
});

describe('runSimulation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'seesaw-sim-'));

  it('runs a scenario file with its config under the flags', () => {
    const file = join(dir, 'two.json');
    writeFileSync(
      file,
      JSON.stringify({
        nodes: [{ id: 'a' }, { id: 'b' }],
        vms: [10, 20, 45, 45]
          .map((cpu, i) => ({ id: `v${i}`, node: 'a', factors: { cpu, io: 0, mem: 0 } }))
          .concat([{ id: 'w', node: 'b', factors: { cpu: 80, io: 0, mem: 0 } }]),
        config: { multiVm: false, selection: 'largest' },
      }),
    );
    // The file asks for `largest`; the flag overrides it with `half-diff`.
    const { result } = runSimulation({
      scenario: file,
      rounds: 1,
      seed: 1,
      config: { selection: 'half-diff' },
    });
    expect(result.moves.map((m) => m.vm)).toEqual(['v1']);
  });

  it('runs a history file', () => {
    const file = join(dir, 'history.json');
    writeFileSync(file, JSON.stringify(runs));
    const { result } = runSimulation({ history: file, seed: 1, config: { thresholdFactor: 2 } });
    expect(result.scenario).toBe(`history:${file}`);
  });

  it('refuses a trace replay without nodes and capacity, and two inputs at once', () => {
    expect(() => runSimulation({ trace: dir, seed: 1, config: {} })).toThrow(
      '--trace needs --nodes N and --capacity C',
    );
    expect(() => runSimulation({ trace: dir, scenario: 'uniform', seed: 1, config: {} })).toThrow(/one of/);
  });

  it('names an unknown scenario and lists the built-ins', () => {
    expect(() => runSimulation({ scenario: 'no-such', seed: 1, config: {} })).toThrow(
      /unknown scenario "no-such".*skewed/,
    );
  });

  it('rejects a bad flag value through the config schema', () => {
    expect(() =>
      runSimulation({ scenario: 'uniform', seed: 1, config: { thresholdFactor: 0.5 }, rounds: 1 }),
    ).toThrow(/thresholdFactor/);
  });
});
