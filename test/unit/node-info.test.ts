// The balancer's view of a node item (`nodeInfoOf`) is made by `plainMaker` so that V8 does not
// pretenure it, and its driver list is one of two shared, frozen lists. Both must stay plain data:
// equal to the literal they replace, with keys in the same order.
import { describe, expect, it } from 'vitest';
import { type NodeRecord, nodeInfoOf } from '../../shared/storage/nodes.ts';

const aRecord = (over: Partial<NodeRecord> = {}): NodeRecord => ({
  id: 'n1',
  weights: { cpu: 1, io: 0.5, mem: 0.25 },
  capacity: 1000,
  memCapacityPages: 4096,
  draining: false,
  labels: {},
  incarnation: 'i1',
  leaseUntil: 10_000,
  registeredAt: 0,
  updatedAt: 0,
  ...over,
});

describe('nodeInfoOf', () => {
  it('is the literal it replaces: plain, keys in order, hints applied, override kept', () => {
    const info = nodeInfoOf(
      aRecord({ hints: { io: 2 }, labels: { qemu: 'tcg' }, loadOverride: 0.5, draining: undefined }),
    );
    expect(info).toStrictEqual({
      id: 'n1',
      weights: { cpu: 1, io: 1, mem: 0.25 },
      capacity: 1000,
      memCapacityPages: 4096,
      draining: false,
      drivers: ['wasm', 'qemu'],
      loadOverride: 0.5,
    });
    expect(Object.getPrototypeOf(info)).toBe(Object.prototype);
    expect(Object.keys(info)).toEqual([
      'id',
      'weights',
      'capacity',
      'memCapacityPages',
      'draining',
      'drivers',
      'loadOverride',
    ]);
  });

  it('leaves out an absent override, and shares one frozen driver list between nodes', () => {
    const a = nodeInfoOf(aRecord());
    const b = nodeInfoOf(aRecord({ id: 'n2', draining: true }));
    expect('loadOverride' in a).toBe(false);
    expect(b.draining).toBe(true);
    expect(a.drivers).toEqual(['wasm']);
    expect(a.drivers).toBe(b.drivers);
    expect(Object.isFrozen(a.drivers)).toBe(true);
    expect(nodeInfoOf(aRecord({ labels: { qemu: 'kvm' } })).drivers).toBe(
      nodeInfoOf(aRecord({ labels: { qemu: 'tcg' } })).drivers,
    );
  });
});
