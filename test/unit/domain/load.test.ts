import { describe, expect, it } from 'vitest';
import { nodeLoad, vmLoad } from '../../../shared/domain/load.ts';
import { imbalance } from '../../../shared/domain/stats.ts';
import { aNode, aVm } from './fixtures.ts';

describe('load', () => {
  it('weights each factor by the node weight and adds them up (Fig. 4)', () => {
    expect(vmLoad({ cpu: 2, io: 3, mem: 4 }, { cpu: 10, io: 1, mem: 0.5 })).toBe(25);
  });

  it('counts paging and network only when both the factor and the weight are present', () => {
    expect(vmLoad({ cpu: 1, io: 0, mem: 0, paging: 5, net: 7 }, { cpu: 1, io: 0, mem: 0, paging: 2 })).toBe(
      11,
    );
    expect(vmLoad({ cpu: 1, io: 0, mem: 0 }, { cpu: 1, io: 0, mem: 0, paging: 2, net: 3 })).toBe(1);
  });

  it('makes a node load the sum of its VM loads under its own weights', () => {
    const node = aNode({ id: 'a', weights: { cpu: 2, io: 0, mem: 0 } });
    const vms = [aVm({ id: 'x', node: 'a', load: 3 }), aVm({ id: 'y', node: 'a', load: 4 })];
    expect(nodeLoad(node, vms)).toBe(14);
  });

  it('lets an administrator override a node load', () => {
    const node = aNode({ id: 'a', loadOverride: 999 });
    expect(nodeLoad(node, [aVm({ id: 'x', node: 'a', load: 3 })])).toBe(999);
  });
});

describe('imbalance', () => {
  it('is zero spread for even loads', () => {
    expect(imbalance([5, 5, 5, 5])).toEqual({ cv: 0, maxOverMean: 1, maxLoad: 5, mean: 5 });
  });

  it('gives the coefficient of variation and the max over the mean', () => {
    const result = imbalance([0, 10]);
    expect(result.mean).toBe(5);
    expect(result.cv).toBeCloseTo(1);
    expect(result.maxOverMean).toBe(2);
    expect(result.maxLoad).toBe(10);
  });

  it('is defined for an empty cluster and for zero load', () => {
    expect(imbalance([]).cv).toBe(0);
    expect(imbalance([0, 0]).cv).toBe(0);
  });
});
