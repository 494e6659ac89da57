import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  activePenalties,
  applyVmPenalties,
  detectPingPong,
  type ExchangeRecord,
  estimateConvergence,
  evaluateExchanges,
  exchangeRecords,
  holdBackPairs,
  type NodeObservation,
  pairKey,
  penalise,
} from '../../shared/domain/learning.ts';
import type { Move, PairDecision, RoundDecision, VmInfo } from '../../shared/domain/types.ts';
import { fitRunRecord, type RunRecord } from '../../shared/storage/runs.ts';

const config = { cooldownMs: 60_000, thresholdFactor: 1.2 };
const anExchange = (over: Partial<ExchangeRecord> = {}): ExchangeRecord => ({
  id: 'r1#0',
  at: 1000,
  from: 'a',
  to: 'b',
  vms: ['v1'],
  before: { from: 10, to: 2 },
  predicted: { from: 6, to: 6 },
  ...over,
});
const seen = (at: number, load: number, vms: string[]): NodeObservation => ({ at, load, vms: new Set(vms) });
const aMove = (vm: string, from: string, to: string, load = 1): Move => ({
  vm,
  from,
  to,
  loadOnSource: load,
  loadOnTarget: load,
});

describe('learning from outcomes', () => {
  it('judges an exchange only once its VMs show up on the target in newer reports', () => {
    const pending = [anExchange()];
    const notYet = new Map([
      ['a', seen(2000, 10, ['v1'])],
      ['b', seen(2000, 2, [])],
    ]);
    expect(evaluateExchanges(pending, (n) => notYet.get(n))).toEqual([]);
    const stale = new Map([
      ['a', seen(900, 6, [])],
      ['b', seen(900, 6, ['v1'])],
    ]);
    expect(evaluateExchanges(pending, (n) => stale.get(n))).toEqual([]);
    const done = new Map([
      ['a', seen(2000, 6.5, [])],
      ['b', seen(2000, 5.5, ['v1'])],
    ]);
    expect(evaluateExchanges(pending, (n) => done.get(n))).toEqual([
      { exchange: 'r1#0', from: 'a', to: 'b', predictedGain: 8, realisedGain: 7, paidOff: true },
    ]);
  });

  it('flags an exchange whose realised gain fell well short of the prediction', () => {
    const after = new Map([
      ['a', seen(2000, 9, [])],
      ['b', seen(2000, 3, ['v1'])],
    ]);
    const [outcome] = evaluateExchanges([anExchange()], (n) => after.get(n));
    expect(outcome).toMatchObject({ predictedGain: 8, realisedGain: 2, paidOff: false });
  });

  it('penalises a pair that did not pay off with a higher threshold and its VMs with a doubled cooldown', () => {
    const outcome = {
      exchange: 'r1#0',
      from: 'b',
      to: 'a',
      predictedGain: 8,
      realisedGain: 1,
      paidOff: false,
    };
    const first = penalise(
      { outcomes: [outcome], pingPong: [], exchanges: [anExchange()] },
      [],
      config,
      5000,
    );
    expect(first).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'pair', key: 'a|b', strikes: 1, thresholdFactor: 1.2 * 1.25 }),
        expect.objectContaining({ kind: 'vm', key: 'v1', strikes: 1, cooldownUntil: 5000 + 120_000 }),
      ]),
    );
    const second = penalise(
      { outcomes: [outcome], pingPong: [], exchanges: [anExchange()] },
      first,
      config,
      6000,
    );
    expect(second.find((p) => p.kind === 'vm')).toMatchObject({ strikes: 2, cooldownUntil: 6000 + 240_000 });
    expect(second.find((p) => p.kind === 'pair')?.thresholdFactor).toBeCloseTo(1.2 * 1.5);
  });

  it('detects a VM going back to the node it left, and penalises it', () => {
    const recent = [anExchange({ from: 'a', to: 'b', vms: ['v1', 'v2'] })];
    const moves = [aMove('v1', 'b', 'a'), aMove('v2', 'b', 'c'), aMove('v3', 'b', 'a')];
    const pingPong = detectPingPong(moves, recent);
    expect(pingPong.map((m) => m.vm)).toEqual(['v1']);
    const penalties = penalise({ outcomes: [], pingPong, exchanges: [] }, [], config, 0);
    expect(penalties.map((p) => [p.kind, p.key, p.reason])).toEqual([
      ['vm', 'v1', 'ping-pong'],
      ['pair', 'a|b', 'ping-pong'],
    ]);
  });

  it('never lets a penalty outlast the learning window, and forgets lapsed ones', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 }), (strikes) => {
        const previous = Array.from({ length: strikes }, (_, i) => ({
          kind: 'vm' as const,
          key: 'v',
          reason: 'ping-pong' as const,
          strikes: i + 1,
          until: 10_000_000,
          cooldownUntil: 1,
          detail: '',
        }));
        const [p] = penalise(
          { outcomes: [], pingPong: [aMove('v', 'a', 'b')], exchanges: [] },
          previous,
          config,
          0,
          {
            payoffRatio: 0.5,
            windowMs: 900_000,
            thresholdStep: 0.25,
            penaltyBaseMs: 60_000,
          },
        );
        return p !== undefined && p.strikes === strikes + 1 && (p.cooldownUntil ?? 0) <= 900_000;
      }),
    );
    const lapsed = penalise({ outcomes: [], pingPong: [aMove('v', 'a', 'b')], exchanges: [] }, [], config, 0);
    expect(activePenalties(lapsed, 10_000_000).size).toBe(0);
  });

  it('lengthens the cooldown of penalised VMs only', () => {
    const vms: VmInfo[] = [
      { id: 'v1', node: 'a', factors: { cpu: 1, io: 0, mem: 0 }, memPages: 1, pinned: false },
      {
        id: 'v2',
        node: 'a',
        factors: { cpu: 1, io: 0, mem: 0 },
        memPages: 1,
        pinned: false,
        cooldownUntil: 5,
      },
    ];
    const active = activePenalties(
      [{ kind: 'vm', key: 'v1', reason: 'no-payoff', strikes: 1, until: 100, cooldownUntil: 90, detail: '' }],
      0,
    );
    expect(applyVmPenalties(vms, active).map((v) => v.cooldownUntil)).toEqual([90, 5]);
  });

  it('holds back a penalised pair whose loads do not exceed its learned threshold', () => {
    const pair = (
      requester: string,
      selected: string,
      loads: [number, number],
      moves: Move[],
    ): PairDecision => ({
      requester,
      selected,
      loads: { requester: loads[0], selected: loads[1] },
      moves,
      reason: { code: 'moved', detail: '' },
      predicted: { requester: loads[0] - 1, selected: loads[1] + 1 },
    });
    const decision: RoundDecision = {
      pairs: [
        pair('a', 'b', [5, 4], [aMove('v1', 'a', 'b')]),
        pair('c', 'd', [5, 4], [aMove('v2', 'c', 'd')]),
      ],
      moves: [aMove('v1', 'a', 'b'), aMove('v2', 'c', 'd')],
      skipped: [],
      before: { cv: 0.1, maxOverMean: 1.1, maxLoad: 5, mean: 4.5 },
      after: { cv: 0.1, maxOverMean: 1.1, maxLoad: 5, mean: 4.5 },
    };
    const active = activePenalties(
      [
        {
          kind: 'pair',
          key: pairKey('b', 'a'),
          reason: 'ping-pong',
          strikes: 1,
          until: 100,
          thresholdFactor: 1.5,
          detail: '',
        },
      ],
      0,
    );
    const loads = new Map([
      ['a', 5],
      ['b', 4],
      ['c', 5],
      ['d', 4],
    ]);
    const { decision: out, heldBack } = holdBackPairs(decision, active, loads);
    expect(heldBack.map((p) => p.requester)).toEqual(['a']);
    expect(out.moves.map((m) => m.vm)).toEqual(['v2']);
    expect(out.pairs[0]?.reason.code).toBe('below-threshold');
    expect(out.pairs[0]?.reason.detail).toMatch(/learned threshold ×1.50/);
  });

  it('records one exchange per pair with the loads it predicted', () => {
    const loads = new Map([
      ['a', 10],
      ['b', 2],
    ]);
    const records = exchangeRecords('r9', 50, [aMove('v1', 'a', 'b', 2), aMove('v2', 'a', 'b', 1)], loads);
    expect(records).toEqual([
      {
        id: 'r9#0',
        at: 50,
        from: 'a',
        to: 'b',
        vms: ['v1', 'v2'],
        before: { from: 10, to: 2 },
        predicted: { from: 7, to: 5 },
      },
    ]);
  });

  it('estimates rounds to the target CV from the observed rate, or from this run when there is no history', () => {
    const fromHistory = estimateConvergence(
      [
        { round: 8, cv: 0.8 },
        { round: 9, cv: 0.4 },
      ],
      { round: 10, cv: 0.2, expectedCv: 0.15 },
      0.05,
    );
    expect(fromHistory.basis).toBe('history');
    expect(fromHistory.ratePerRound).toBeCloseTo(0.5);
    expect(fromHistory.rounds).toBe(2);
    const fresh = estimateConvergence([], { round: 1, cv: 0.4, expectedCv: 0.2 }, 0.05);
    expect(fresh).toMatchObject({ basis: 'this-run', rounds: 3 });
    expect(estimateConvergence([], { round: 1, cv: 0.03, expectedCv: 0.03 }).rounds).toBe(0);
    expect(
      estimateConvergence([{ round: 0, cv: 0.2 }], { round: 1, cv: 0.3, expectedCv: 0.3 }).rounds,
    ).toBeNull();
  });
});

describe('run records', () => {
  it('trims a record that would not fit in one item, idle pairs first, and says how much it left out', () => {
    const idle = (i: number): PairDecision => ({
      requester: `a${i}`,
      selected: `b${i}`,
      loads: { requester: 1, selected: 1 },
      moves: [],
      reason: { code: 'balanced', detail: 'x'.repeat(200) },
      predicted: { requester: 1, selected: 1 },
    });
    const moving: PairDecision = {
      ...idle(-1),
      moves: [aMove('v', 'a', 'b')],
      reason: { code: 'moved', detail: '' },
    };
    const record = {
      id: 'r',
      pairs: [moving, ...Array.from({ length: 3000 }, (_, i) => idle(i))],
      orders: [],
      skipped: [],
    } as unknown as RunRecord;
    const fitted = fitRunRecord(record, 100_000);
    expect(Buffer.byteLength(JSON.stringify(fitted))).toBeLessThanOrEqual(100_000);
    expect(fitted.pairs[0]).toBe(moving);
    expect(fitted.omitted?.pairs).toBe(3001 - fitted.pairs.length);
    expect(fitRunRecord({ ...record, pairs: [moving] })).not.toHaveProperty('omitted');
  });
});
