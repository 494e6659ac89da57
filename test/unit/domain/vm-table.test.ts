// The round's VMs in columns (shared/domain/vm-table.ts) and the constraints read from them
// (`cannotLeaveAt`, `cannotEnterAt`, `excludedAt`): the columns hold each VM's figures, and a
// constraint answers for the VM at a position exactly what it answers for the VM object. The law is
// checked on random VMs and takers (fast-check, fixed seed) beside pinned cases of each reason.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cannotEnter,
  cannotEnterAt,
  cannotLeave,
  cannotLeaveAt,
  excludedAt,
  excludedBy,
  type TakerState,
} from '../../../shared/domain/constraints.ts';
import type { DriverName } from '../../../shared/domain/guests.ts';
import type { VmInfo } from '../../../shared/domain/types.ts';
import { BUSY, PINNED, vmTableOf } from '../../../shared/domain/vm-table.ts';
import { aNode, aVm } from './fixtures.ts';

const NOW = 1_000_000;

function tableOf(vms: VmInfo[]) {
  return vmTableOf(
    vms,
    Int32Array.from(vms, (_, i) => i % 2),
    Float64Array.from(vms, (vm) => vm.factors.cpu),
  );
}

function taker(over: { memUsedPages?: number; groups?: [string, number][]; drivers?: DriverName[] } = {}) {
  const node = aNode({ id: 't', memCapacityPages: 100, ...(over.drivers ? { drivers: over.drivers } : {}) });
  return { node, memUsedPages: over.memUsedPages ?? 0, groups: new Map(over.groups ?? []) } as TakerState;
}

describe('vmTableOf', () => {
  const vms = [
    aVm({ id: 'a', node: 'n0', load: 2, memPages: 8, busy: true, group: 'g1' }),
    aVm({ id: 'b', node: 'n1', load: 3, memPages: 32, pinned: true, cooldownUntil: NOW + 5, driver: 'qemu' }),
    aVm({ id: 'c', node: 'n0', load: 0.5, memPages: 16, busy: true, pinned: true }),
  ];
  const t = tableOf(vms);

  it('holds each VM’s figures at its position, and answers the VM objects themselves', () => {
    expect(t.count).toBe(3);
    expect(Array.from(t.ids)).toEqual(['a', 'b', 'c']);
    expect(Array.from(t.node)).toEqual([0, 1, 0]);
    expect(Array.from(t.load)).toEqual([2, 3, 0.5]);
    expect(Array.from(t.memPages)).toEqual([8, 32, 16]);
    expect(Array.from(t.flags)).toEqual([BUSY, PINNED, BUSY | PINNED]);
    expect(Array.from(t.cooldownUntil)).toEqual([Number.NaN, NOW + 5, Number.NaN]);
    expect(t.info(1)).toBe(vms[1]);
    expect(t.factorsOf(2)).toBe(vms[2]?.factors);
  });

  it('has a group and a driver column, one entry per VM, when any VM has one', () => {
    // The last VM has neither: the columns still reach it.
    expect(Array.from(t.group ?? [])).toEqual(['g1', undefined, undefined]);
    expect(Array.from(t.driver ?? [])).toEqual([undefined, 'qemu', undefined]);
  });

  it('has no group or driver column when no VM has one', () => {
    const plain = tableOf([aVm({ id: 'a', node: 'n0' }), aVm({ id: 'b', node: 'n1' })]);
    expect(plain.group).toBeUndefined();
    expect(plain.driver).toBeUndefined();
    expect(plain.count).toBe(2);
    const grouped = tableOf([aVm({ id: 'a', node: 'n0', group: 'g' })]);
    expect(grouped.driver).toBeUndefined();
    expect(Array.from(grouped.group ?? [])).toEqual(['g']);
  });
});

describe('the constraints read from the columns', () => {
  it('name each reason a VM may not leave, busy before pinned before cooldown', () => {
    const t = tableOf([
      aVm({ id: 'free', node: 'n' }),
      aVm({ id: 'busy', node: 'n', busy: true, pinned: true, cooldownUntil: NOW + 1 }),
      aVm({ id: 'pinned', node: 'n', pinned: true, cooldownUntil: NOW + 1 }),
      aVm({ id: 'cooling', node: 'n', cooldownUntil: NOW + 1 }),
      aVm({ id: 'cooled', node: 'n', cooldownUntil: NOW }),
    ]);
    expect([0, 1, 2, 3, 4].map((v) => cannotLeaveAt(t, v, NOW))).toEqual([
      undefined,
      'busy',
      'pinned',
      'cooldown',
      undefined,
    ]);
  });

  it('name each reason a taker may not receive a VM, driver before memory before group', () => {
    const t = tableOf([
      aVm({ id: 'fits', node: 'n', memPages: 50 }),
      aVm({ id: 'qemu', node: 'n', memPages: 200, group: 'g', driver: 'qemu' }),
      aVm({ id: 'large', node: 'n', memPages: 61, group: 'g' }),
      aVm({ id: 'exact', node: 'n', memPages: 60 }),
      aVm({ id: 'grouped', node: 'n', memPages: 1, group: 'g' }),
      aVm({ id: 'other', node: 'n', memPages: 1, group: 'h' }),
    ]);
    const on = taker({
      memUsedPages: 40,
      groups: [
        ['g', 1],
        ['h', 0],
      ],
    });
    expect([0, 1, 2, 3, 4, 5].map((v) => cannotEnterAt(t, v, on))).toEqual([
      undefined,
      'driver',
      'memory',
      undefined,
      'anti-affinity',
      undefined,
    ]);
    // A node that offers QEMU takes the QEMU VM as far as its driver goes (its memory still refuses).
    expect(cannotEnterAt(t, 1, taker({ drivers: ['wasm', 'qemu'] }))).toBe('memory');
    expect(cannotEnterAt(t, 1, taker({ drivers: ['qemu'], memUsedPages: -100, groups: [['g', 1]] }))).toBe(
      'anti-affinity',
    );
    // A group column without this VM's group, and a driver column without this VM's driver.
    expect(cannotEnterAt(t, 3, taker({ groups: [['g', 1]] }))).toBeUndefined();
  });

  it('put what keeps a VM home before what the taker refuses', () => {
    const t = tableOf([aVm({ id: 'x', node: 'n', pinned: true, memPages: 500, driver: 'qemu' })]);
    expect(excludedAt(t, 0, taker(), NOW)).toBe('pinned');
    const free = tableOf([aVm({ id: 'y', node: 'n', memPages: 500 })]);
    expect(excludedAt(free, 0, taker(), NOW)).toBe('memory');
    expect(excludedAt(free, 0, taker({ memUsedPages: -400 }), NOW)).toBeUndefined();
  });

  it('answer for every VM exactly as the constraints on the VM objects do (random VMs and takers)', () => {
    const vmArb = fc.record({
      load: fc.double({ min: 0, max: 4, noNaN: true }),
      memPages: fc.integer({ min: 0, max: 120 }),
      busy: fc.option(fc.boolean(), { nil: undefined }),
      pinned: fc.boolean(),
      cooldownUntil: fc.option(fc.integer({ min: NOW - 2, max: NOW + 2 }), { nil: undefined }),
      group: fc.option(fc.constantFrom('g', 'h'), { nil: undefined }),
      driver: fc.option(fc.constantFrom<DriverName>('wasm', 'qemu'), { nil: undefined }),
    });
    const takerArb = fc.record({
      memUsedPages: fc.integer({ min: 0, max: 100 }),
      groups: fc.array(fc.tuple(fc.constantFrom('g', 'h'), fc.integer({ min: 0, max: 2 })), { maxLength: 2 }),
      drivers: fc.option(fc.subarray<DriverName>(['wasm', 'qemu']), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(vmArb, { minLength: 1, maxLength: 6 }), takerArb, (specs, over) => {
        const vms = specs.map((s, i) => {
          const vm = aVm({ id: `v${i}`, node: 'n', load: s.load, memPages: s.memPages, pinned: s.pinned });
          if (s.busy !== undefined) vm.busy = s.busy;
          if (s.cooldownUntil !== undefined) vm.cooldownUntil = s.cooldownUntil;
          if (s.group !== undefined) vm.group = s.group;
          if (s.driver !== undefined) vm.driver = s.driver;
          return vm;
        });
        const t = tableOf(vms);
        const on = taker({
          memUsedPages: over.memUsedPages,
          groups: over.groups,
          ...(over.drivers ? { drivers: over.drivers } : {}),
        });
        vms.forEach((vm, v) => {
          expect(cannotLeaveAt(t, v, NOW)).toBe(cannotLeave(vm, NOW));
          expect(cannotEnterAt(t, v, on)).toBe(cannotEnter(vm, on));
          expect(excludedAt(t, v, on, NOW)).toBe(excludedBy(vm, on, NOW));
        });
      }),
      { seed: 15, numRuns: 300 },
    );
  });
});
