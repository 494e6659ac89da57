import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BALANCING_CONFIG } from '../../../shared/domain/config.ts';
import { readTraceDir } from '../../../shared/sim/files.ts';
import { parseEstimator, replayTraces, type TraceSet } from '../../../shared/sim/trace.ts';

const DATA = join(import.meta.dirname, '..', '..', 'data', 'planetlab');

const options = {
  nodes: 3,
  capacity: 1.5,
  seed: 1,
  config: DEFAULT_BALANCING_CONFIG,
  estimator: parseEstimator('last'),
};

describe('replayTraces', () => {
  it('counts overload node-ticks and steal from demand above capacity', () => {
    // Two VMs at 100% on one node of capacity 1.5 (the other node empty), no balancing possible.
    const traces: TraceSet = {
      name: 't',
      vms: [
        { id: 'a', percent: [100, 100] },
        { id: 'b', percent: [50, 50] },
        { id: 'c', percent: [100, 100] },
      ],
    };
    const { result } = replayTraces(traces, { ...options, nodes: 2 });
    // Round-robin start: a and c on n0 (demand 2.0), b on n1 (0.5); tick 0 overloads n0 by 0.5.
    expect(result.baselines.none.overloadNodeTicks).toBe(2);
    expect(result.baselines.none.steal).toBeCloseTo(1);
    expect(result.overloadNodeTicks).toBeLessThanOrEqual(2);
    expect(result.rounds).toBe(2);
  });

  it('halves the overloads of no balancing on the PlanetLab subset with under half greedy’s migrations, the same way for the same seed', () => {
    const traces = readTraceDir(DATA);
    expect(traces.vms.length).toBe(21);
    expect(traces.vms[0]?.percent).toHaveLength(288);
    // The profile the bench recommends: act on headroom, judge demand by a smoothed level.
    const profile = {
      ...options,
      nodes: 4,
      capacity: 1,
      config: { ...DEFAULT_BALANCING_CONFIG, trigger: 'headroom' as const, highThreshold: 0.9 },
      estimator: parseEstimator('ewma:0.3'),
    };
    const run = () => replayTraces(traces, profile).result;
    const a = run();
    expect(JSON.stringify(run())).toBe(JSON.stringify(a));
    expect(a.overloadNodeTicks).toBeLessThan((a.baselines.none.overloadNodeTicks ?? 0) / 2);
    expect(a.migrations).toBeLessThan(a.baselines.greedy.migrations / 2);
    expect(a.baselines.greedy.overloadNodeTicks).toBeDefined();
    expect(a.baselines.greedy.steal).toBeDefined();
  });

  it('parses estimators and rejects nonsense', () => {
    expect(parseEstimator('peak:6')).toEqual({ kind: 'peak', window: 6 });
    expect(parseEstimator('ewma:0.3')).toEqual({ kind: 'ewma', alpha: 0.3 });
    expect(() => parseEstimator('peak:0')).toThrow(/invalid estimator/);
    expect(() => parseEstimator('median')).toThrow(/invalid estimator/);
  });
});
