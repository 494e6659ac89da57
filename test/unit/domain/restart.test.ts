import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Holding, nextAction } from '../../../shared/domain/protocol.ts';
import {
  afterFailure,
  BASE_BACKOFF_MS,
  backoffMs,
  DEFAULT_MAX_RETRIES,
  MAX_BACKOFF_MS,
} from '../../../shared/domain/restart.ts';
import type { VmState } from '../../../shared/domain/vm-state.ts';
import { aProtocolVm as aVm } from '../../support/protocol-vms.ts';

const held: Holding = { fence: 3, paused: true };

describe('the restart policy', () => {
  it('fails a VM at its first failure under `never` (and without a policy)', () => {
    expect(afterFailure({ kind: 'never' }, 0, 0)).toEqual({ state: 'FAILED', failures: 1 });
    expect(afterFailure(undefined, 3, 0)).toEqual({ state: 'FAILED', failures: 4 });
  });

  it('retries on-failure after doubling backoffs, then fails once maxRetries retries failed', () => {
    const policy = { kind: 'on-failure', maxRetries: 3 } as const;
    expect(afterFailure(policy, 0, 1000)).toEqual({
      state: 'PENDING',
      failures: 1,
      retryAt: 1000 + BASE_BACKOFF_MS,
    });
    expect(afterFailure(policy, 1, 1000)).toEqual({
      state: 'PENDING',
      failures: 2,
      retryAt: 1000 + 2 * BASE_BACKOFF_MS,
    });
    expect(afterFailure(policy, 2, 0)).toMatchObject({ state: 'PENDING', failures: 3 });
    expect(afterFailure(policy, 3, 0)).toEqual({ state: 'FAILED', failures: 4 });
    expect(afterFailure({ kind: 'on-failure' }, DEFAULT_MAX_RETRIES, 0).state).toBe('FAILED');
  });

  it('never waits less than the base nor more than the cap, and never less than the previous wait', () => {
    expect(backoffMs(1)).toBe(BASE_BACKOFF_MS);
    expect(backoffMs(40)).toBe(MAX_BACKOFF_MS);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), (n) => {
        const wait = backoffMs(n);
        return wait >= BASE_BACKOFF_MS && wait <= MAX_BACKOFF_MS && wait >= backoffMs(n - 1);
      }),
    );
  });

  it('ends every run of failures in FAILED within maxRetries + 1 failures', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), (max) => {
        let failures = 0;
        for (;;) {
          const next = afterFailure({ kind: 'on-failure', maxRetries: max }, failures, 0);
          failures = next.failures;
          if (next.state === 'FAILED') return failures === max + 1;
        }
      }),
    );
  });
});

describe('the protocol and failed guests', () => {
  it('records the failure of a held guest the node owns, whatever it was doing but deleting', () => {
    for (const state of ['PENDING', 'RUNNING', 'SUSPENDING'] as VmState[])
      expect(nextAction({ vm: aVm({ state }), self: 'a', held, now: 0, failure: 'trap in run: x' })).toEqual({
        kind: 'fail',
        reason: 'trap in run: x',
      });
    expect(nextAction({ vm: aVm({ state: 'DELETING' }), self: 'a', held, now: 0, failure: 'x' }).kind).toBe(
      'delete',
    );
  });

  it('stops a held copy of a FAILED VM and never starts or recovers a FAILED one', () => {
    expect(nextAction({ vm: aVm({ state: 'FAILED' }), self: 'a', held, now: 0 }).kind).toBe('stop');
    expect(nextAction({ vm: aVm({ state: 'FAILED' }), self: 'a', held: undefined, now: 0 }).kind).toBe(
      'none',
    );
  });

  it('leaves a failed copy of another node or fence to be stopped, not failed', () => {
    expect(nextAction({ vm: aVm({ fence: 4 }), self: 'a', held, now: 0, failure: 'x' }).kind).toBe('stop');
    expect(nextAction({ vm: aVm({ owner: 'b' }), self: 'a', held, now: 0, failure: 'x' }).kind).toBe('stop');
  });

  it('starts a backing-off VM only once its retry time has come', () => {
    const vm = aVm({ state: 'PENDING', retryAt: 5000 });
    expect(nextAction({ vm, self: 'a', held: undefined, now: 4999 }).kind).toBe('none');
    expect(nextAction({ vm, self: 'a', held: undefined, now: 5000 }).kind).toBe('start');
  });
});
