// The migration protocol's decisions (shared/domain/protocol.ts) in the cases the broad tests in
// test/unit/protocol.test.ts leave open: each stop with the reason the agent logs, a failure in every
// state, nodes that are neither source nor target, which run booked a node first, and exact deadlines.
import { describe, expect, it } from 'vitest';
import {
  type Action,
  awaitsPeer,
  bookedByEarlierRun,
  type Holding,
  nextAction,
  orderDeadline,
  type ProtocolVm,
  takeDeadline,
} from '../../../shared/domain/protocol.ts';
import type { MigrationOrder } from '../../../shared/domain/vm-state.ts';
import { anOrder as anOrderOf, aProtocolVm as aVm } from '../../support/protocol-vms.ts';

// The orders here are one run's (run-1) unless a test names another.
const anOrder = (over: Partial<MigrationOrder> = {}) => anOrderOf({ origin: 'run-1', ...over });

const running: Holding = { fence: 3, paused: false };
const prepared: Holding = { fence: 4, paused: true, migrationId: 'm-1' };

const act = (
  vm: ProtocolVm | undefined,
  self: string,
  held?: Holding,
  more: { busyElsewhere?: boolean; failure?: string; checkpointDue?: boolean } = {},
): Action => nextAction({ vm, self, held, now: 1000, ...more });

describe('a stop, with the reason the agent logs', () => {
  it('names why the guest must go', () => {
    const ready = anOrder({ phase: 'IMAGE_READY' });
    expect(act(undefined, 'a', running)).toEqual({ kind: 'stop', why: 'the VM no longer exists' });
    expect(act(aVm({ migration: ready }), 'b', { ...prepared, migrationId: 'm-0' })).toEqual({
      kind: 'stop',
      why: 'a stale copy of a VM this node is about to take',
    });
    expect(act(aVm({ migration: ready }), 'a', running)).toEqual({
      kind: 'stop',
      why: 'the image is handed over',
    });
    expect(
      act(aVm({ migration: anOrder({ precopiedAt: 1 }) }), 'b', { ...prepared, migrationId: 'm-0' }),
    ).toEqual({
      kind: 'stop',
      why: 'a copy prepared for another order',
    });
    expect(act(aVm({ owner: 'c' }), 'a', running)).toEqual({ kind: 'stop', why: 'owned by c now' });
    expect(act(aVm({ fence: 4 }), 'a', running)).toEqual({ kind: 'stop', why: 'fence moved to 4' });
    expect(act(aVm({ state: 'FAILED' }), 'a', running)).toEqual({ kind: 'stop', why: 'failed' });
    expect(act(aVm({ state: 'SUSPENDED' }), 'a', running)).toEqual({ kind: 'stop', why: 'suspended' });
  });

  it('drops a handed-over copy loaded under another fence, even for the right order', () => {
    const ready = aVm({ migration: anOrder({ phase: 'IMAGE_READY' }) });
    expect(act(ready, 'b', { ...prepared, fence: 5 })).toMatchObject({ kind: 'stop' });
    expect(act(ready, 'b', prepared)).toMatchObject({ kind: 'migrateIn' });
  });
});

describe('a guest that failed in the kernel', () => {
  it('is recorded as failed while it runs or waits, and only stopped once FAILED, SUSPENDED or DELETING', () => {
    const failure = 'exit 3';
    expect(act(aVm(), 'a', running, { failure })).toEqual({ kind: 'fail', reason: failure });
    expect(act(aVm({ state: 'PENDING' }), 'a', running, { failure })).toEqual({
      kind: 'fail',
      reason: failure,
    });
    expect(act(aVm({ state: 'FAILED' }), 'a', running, { failure })).toEqual({ kind: 'stop', why: 'failed' });
    expect(act(aVm({ state: 'SUSPENDED' }), 'a', running, { failure })).toEqual({
      kind: 'stop',
      why: 'suspended',
    });
    expect(act(aVm({ state: 'DELETING' }), 'a', running, { failure })).toEqual({ kind: 'delete' });
  });
});

describe('who acts on an ORDERED migration', () => {
  it('declines only as the source: a busy target still prepares, and a node without an order goes on', () => {
    const order = anOrder({ precopiedAt: 500 });
    expect(act(aVm({ migration: order }), 'a', running, { busyElsewhere: true })).toEqual({
      kind: 'abort',
      order,
    });
    expect(act(aVm({ migration: order }), 'b', undefined, { busyElsewhere: true })).toEqual({
      kind: 'prepareIn',
      order,
    });
    expect(act(aVm(), 'a', running, { busyElsewhere: true, checkpointDue: true })).toEqual({
      kind: 'checkpoint',
    });
  });

  it('treats a node that holds a copy but is neither side as a former owner', () => {
    // c once ran vm-1 under fence 3; the table now says a owns it and orders it to b.
    expect(act(aVm({ migration: anOrder() }), 'c', running)).toEqual({ kind: 'stop', why: 'owned by a now' });
  });

  it('lets a target that already owns the VM run it as its own, not as a copy to prepare', () => {
    // b owns vm-1 under fence 3 while a stale order a → b is still on the item.
    const vm = aVm({ owner: 'b', migration: anOrder({ precopiedAt: 500 }) });
    expect(act(vm, 'b', running)).toEqual({ kind: 'none' });
  });

  it('has the target prepare only a RUNNING guest', () => {
    const order = anOrder({ precopiedAt: 500 });
    expect(act(aVm({ state: 'SUSPENDING', migration: order }), 'b')).toEqual({ kind: 'none' });
    expect(act(aVm({ migration: order }), 'b')).toEqual({ kind: 'prepareIn', order });
  });
});

describe('which run booked the node first', () => {
  const mine = aVm({ migration: anOrder({ id: 'm-2', orderedAt: 500 }) });
  const other = (over: Partial<MigrationOrder>, id = 'vm-9') =>
    aVm({ id, migration: anOrder({ origin: 'run-0', ...over }) });

  it('is never asked of a VM without an order, nor confused by VMs without one', () => {
    expect(bookedByEarlierRun(aVm(), [other({ orderedAt: 100 })], 'a')).toBe(false);
    expect(bookedByEarlierRun(mine, [aVm({ id: 'vm-8' }), mine], 'a')).toBe(false);
  });

  it('counts a handed-over order as earlier whenever it was ordered', () => {
    expect(bookedByEarlierRun(mine, [other({ phase: 'IMAGE_READY', orderedAt: 900 })], 'a')).toBe(true);
  });

  it('breaks a tie of order times by order id, and never lets a later order count as earlier', () => {
    expect(bookedByEarlierRun(mine, [other({ id: 'm-1', orderedAt: 500 })], 'a')).toBe(true);
    expect(bookedByEarlierRun(mine, [other({ id: 'm-3', orderedAt: 500 })], 'a')).toBe(false);
    expect(bookedByEarlierRun(mine, [other({ id: 'm-1', orderedAt: 900 })], 'a')).toBe(false);
  });

  it('sees a chain of one run (a → b, then b → c) as one booking, and of two runs as two', () => {
    // b is the target of a → b and the source of b → c: one run decided both, so b takes both.
    const inbound = aVm({ migration: anOrder({ id: 'm-2', orderedAt: 500 }) });
    const onward = aVm({
      id: 'vm-2',
      owner: 'b',
      migration: anOrder({ id: 'm-1', from: 'b', to: 'c', phase: 'IMAGE_READY', orderedAt: 500 }),
    });
    expect(bookedByEarlierRun(inbound, [onward], 'b')).toBe(false);
    const onwardOfAnotherRun = aVm({ ...onward, migration: { ...onward.migration!, origin: 'run-0' } });
    expect(bookedByEarlierRun(inbound, [onwardOfAnotherRun], 'b')).toBe(true);
  });
});

describe('who waits on the other side of a switchover', () => {
  it('is neither a node without the item, a target that already owns it, nor a third node', () => {
    expect(awaitsPeer(undefined, 'a', running)).toBe(false);
    expect(awaitsPeer(aVm({ owner: 'b', migration: anOrder() }), 'b', running)).toBe(false);
    expect(awaitsPeer(aVm({ migration: anOrder({ precopiedAt: 1 }) }), 'c', running)).toBe(false);
  });

  it('is a source only while it still runs the guest', () => {
    expect(awaitsPeer(aVm({ migration: anOrder({ precopiedAt: 1 }) }), 'a', undefined)).toBe(false);
    expect(awaitsPeer(aVm({ migration: anOrder({ precopiedAt: 1 }) }), 'a', running)).toBe(true);
  });
});

describe('deadlines', () => {
  it('add the base time and 2 ms per page to the time of the order or of the image (pinned)', () => {
    expect(orderDeadline(1000, 100)).toBe(31_200);
    expect(takeDeadline(5000, 100)).toBe(35_200);
    expect(orderDeadline(0, 10, { orderMs: 100, takeMs: 50, perPageMs: 3 })).toBe(130);
    expect(takeDeadline(0, 10, { orderMs: 100, takeMs: 50, perPageMs: 3 })).toBe(80);
  });
});
