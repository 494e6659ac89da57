import { describe, expect, it } from 'vitest';
import { roundLine } from '../../bin/local/cluster.ts';
import type { RunRecord } from '../../shared/storage/runs.ts';
import { aPair } from '../support/records.ts';

const aRun = (overrides: Partial<RunRecord>): RunRecord =>
  ({
    round: 7,
    nodes: { read: 3, inShard: 3, considered: 3 },
    pairs: [],
    reasons: {},
    orders: [],
    before: { cv: 0.5, maxOverMean: 1.5, maxLoad: 3, mean: 2 },
    ...overrides,
  }) as RunRecord;

describe('the round line seesaw up prints', () => {
  it("gives the CV, the paired nodes' loads in id order, the written moves and why other pairs idled", () => {
    const line = roundLine(
      aRun({
        pairs: [
          aPair('node-2', 'node-1', [1.2, 0.8], {
            reason: { code: 'moved', detail: '' },
            predicted: { requester: 1, selected: 1 },
          }),
        ],
        reasons: { moved: 1, 'no-gain': 2 },
        orders: [
          { vm: 'vm-a', from: 'node-2', to: 'node-1', migration: 'm1', outcome: 'written' },
          { vm: 'vm-b', from: 'node-2', to: 'node-1', migration: 'm2', outcome: 'lost' },
        ],
      }),
    );
    expect(line).toBe(
      'round 7: CV 50.0% over 3 nodes  node-1=0.80 node-2=1.20  moves: vm-a node-2→node-1  (no-gain×2)',
    );
  });

  it('is just the CV when nothing was paired', () => {
    expect(roundLine(aRun({ nodes: { read: 1, inShard: 1, considered: 1 } }))).toBe(
      'round 7: CV 50.0% over 1 nodes',
    );
  });
});
