import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { createRng } from '../../../shared/domain/rng.ts';
import { lowerBound } from '../../../shared/sim/cluster.ts';
import { plotSvg } from '../../../shared/sim/plot.ts';
import { builtinScenario } from '../../../shared/sim/scenarios.ts';
import { simulate } from '../../../shared/sim/simulate.ts';
import type { Scenario } from '../../../shared/sim/types.ts';
import { aNode, aVm, vmsOn } from '../domain/fixtures.ts';

const options = (over: Partial<Parameters<typeof simulate>[1]> = {}) => ({
  rounds: 10,
  seed: 7,
  config: DEFAULT_BALANCING_CONFIG,
  intervalMs: 60_000,
  ...over,
});

const small = (name: string) => builtinScenario(name, createRng(3), { nodes: 20, vms: 200 });

describe('simulate', () => {
  it('gives the same JSON for the same seed', () => {
    for (const name of ['skewed', 'churn', 'hotspot']) {
      const a = JSON.stringify(simulate(small(name), options()).result);
      const b = JSON.stringify(simulate(small(name), options()).result);
      expect(a).toBe(b);
    }
  });

  it('gives different runs for different seeds when pairing is random', () => {
    const config = { ...DEFAULT_BALANCING_CONFIG, pairing: 'random' as const };
    const a = simulate(small('uniform'), options({ config, seed: 1 })).result.moves;
    const b = simulate(small('uniform'), options({ config, seed: 2 })).result.moves;
    expect(a).not.toEqual(b);
  });

  it('reports the issue’s JSON fields', () => {
    const { result } = simulate(small('skewed'), options());
    expect(Object.keys(result)).toEqual(
      expect.arrayContaining([
        'scenario',
        'nodes',
        'vms',
        'rounds',
        'lowerBound',
        'initial',
        'final',
        'migrations',
        'bytesMoved',
        'roundsToCv',
        'migrationsToCv',
        'moves',
        'baselines',
      ]),
    );
    expect(Object.keys(result.roundsToCv)).toEqual(['0.10', '0.05']);
    expect(result.moves[0]).toEqual({
      round: expect.any(Number),
      vm: expect.any(String),
      from: expect.any(String),
      to: expect.any(String),
    });
    expect(result.baselines.none.migrations).toBe(0);
    expect(result.baselines.none.final).toEqual(result.baselines.none.initial);
  });

  it('evens a skewed cluster and counts every move and byte', () => {
    const { result } = simulate(small('skewed'), options({ rounds: 30 }));
    expect(result.final.cv).toBeLessThan(result.initial.cv / 5);
    expect(result.migrations).toBe(result.moves.length);
    expect(result.bytesMoved).toBe(result.migrations * 4096 * 65_536);
    expect(result.final.maxLoad).toBeGreaterThanOrEqual(result.lowerBound - 1e-9);
  });

  it('empties draining nodes', () => {
    const scenario = small('drain');
    const { result } = simulate(scenario, options({ rounds: 30 }));
    const draining = new Set(scenario.nodes.filter((n) => n.draining).map((n) => n.id));
    const where = new Map(scenario.vms.map((v) => [v.id, v.node]));
    for (const m of result.moves) where.set(m.vm, m.to);
    expect([...where.values()].filter((n) => draining.has(n))).toEqual([]);
    expect(result.moves.every((m) => !draining.has(m.to))).toBe(true);
  });

  it('runs sharded rounds without moving a VM into another shard’s pair twice', () => {
    const config = { ...DEFAULT_BALANCING_CONFIG, shards: 3 };
    const { result } = simulate(small('skewed'), options({ config }));
    expect(result.final.cv).toBeLessThan(result.initial.cv);
  });
});

describe('lowerBound', () => {
  it('is the mean node load when no VM is larger', () => {
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b' })];
    expect(lowerBound(nodes, [...vmsOn('a', [3, 3, 2]), ...vmsOn('b', [4])])).toBe(6);
  });

  it('is the largest VM when it exceeds the mean', () => {
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c' })];
    expect(lowerBound(nodes, [...vmsOn('a', [9]), ...vmsOn('b', [1, 2])])).toBe(9);
  });

  it('leaves draining nodes out of the mean', () => {
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b', draining: true })];
    expect(lowerBound(nodes, [...vmsOn('a', [3]), ...vmsOn('b', [3])])).toBe(6);
  });

  it('counts each VM at its smallest load when weights differ', () => {
    const nodes = [aNode({ id: 'a' }), aNode({ id: 'b', weights: { cpu: 2, io: 0, mem: 0 } })];
    expect(
      lowerBound(nodes, [aVm({ id: 'x', node: 'b', load: 4 }), aVm({ id: 'y', node: 'a', load: 2 })]),
    ).toBe(4);
  });
});

describe('the greedy baseline', () => {
  const run = (scenario: Scenario, rounds = 1) =>
    simulate(
      scenario,
      options({ rounds, config: { ...DEFAULT_BALANCING_CONFIG, maxMigrationsPerCluster: 1 } }),
    ).result;

  it('moves the VM that most reduces the spread: the 20 from 120 to 80', () => {
    const scenario: Scenario = {
      name: 'worked example',
      nodes: [aNode({ id: 'a' }), aNode({ id: 'b' })],
      vms: [...vmsOn('a', [10, 20, 45, 45]), ...vmsOn('b', [80])],
    };
    const greedy = run(scenario).baselines.greedy;
    expect(greedy.migrations).toBe(1);
    expect(greedy.final).toEqual({ maxLoad: 100, cv: 0 });
  });

  it('moves from the most loaded node to the least loaded one', () => {
    const scenario: Scenario = {
      name: 'three nodes',
      nodes: [aNode({ id: 'a' }), aNode({ id: 'b' }), aNode({ id: 'c' })],
      vms: [...vmsOn('a', [6, 6]), ...vmsOn('b', [5]), ...vmsOn('c', [1])],
    };
    // Loads 12, 5, 1: moving a 6 from a to c gives 6, 5, 7 — the smallest spread one move can reach.
    const greedy = run(scenario).baselines.greedy;
    expect(greedy.final.maxLoad).toBe(7);
    expect(greedy.migrations).toBe(1);
  });

  it('stops when no move reduces the spread', () => {
    const scenario: Scenario = {
      name: 'stuck',
      nodes: [aNode({ id: 'a' }), aNode({ id: 'b' })],
      vms: [...vmsOn('a', [10]), ...vmsOn('b', [2])],
    };
    // Moving the 10 would give 0 vs 12: worse. Moving the 2 gives 12 vs 0: worse.
    expect(run(scenario, 5).baselines.greedy.migrations).toBe(0);
  });

  it('leaves pinned VMs where they are', () => {
    const scenario: Scenario = {
      name: 'pinned',
      nodes: [aNode({ id: 'a' }), aNode({ id: 'b' })],
      vms: [
        aVm({ id: 'p', node: 'a', load: 10, pinned: true }),
        aVm({ id: 'q', node: 'a', load: 10, pinned: true }),
      ],
    };
    expect(run(scenario, 3).baselines.greedy.migrations).toBe(0);
  });

  it('reaches an even split in as many moves as a person would make', () => {
    const scenario: Scenario = {
      name: 'four ones',
      nodes: [aNode({ id: 'a' }), aNode({ id: 'b' })],
      vms: vmsOn('a', [1, 1, 1, 1]),
    };
    const greedy = simulate(scenario, options({ rounds: 5 })).result.baselines.greedy;
    expect(greedy.migrations).toBe(2);
    expect(greedy.final.cv).toBe(0);
    expect(greedy.migrationsToCv['0.05']).toBe(2);
  });
});

describe('plotSvg', () => {
  it('draws the CV and the spread for Seesaw and both baselines', () => {
    const { series } = simulate(small('skewed'), options({ rounds: 5 }));
    const svg = plotSvg('skewed <test>', series);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('skewed &lt;test&gt;');
    // Two panels; the spread panel has an upper and a dashed lower line per strategy.
    expect(svg.match(/<polyline/g)).toHaveLength(9);
  });
});
