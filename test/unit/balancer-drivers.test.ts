// The balancer's input carries the drivers: a node's `qemu` label becomes the drivers it offers, and
// a VM's reported driver becomes the one it needs, so decideRound keeps qemu VMs on qemu nodes.
import { describe, expect, it } from 'vitest';
import { roundView } from '../../functions/balancer/input.ts';
import type { ReportedVm } from '../../shared/storage/nodes.ts';
import { aNodeRecord, aReportedVm } from '../support/records.ts';

const NOW = 1_000_000;
const aRecord = (id: string, labels: Record<string, string>, vms: Record<string, ReportedVm>) =>
  aNodeRecord(id, { now: NOW, labels, vms });

describe('roundView and drivers', () => {
  it('reads the drivers each node offers from its labels and the driver each VM needs from its report', () => {
    const view = roundView(
      [
        aRecord('q', { qemu: 'tcg' }, { x: aReportedVm({ driver: 'qemu' }) }),
        aRecord('w', {}, { p: aReportedVm() }),
      ],
      { now: NOW, round: 0, shard: 0, shards: 1, reportStaleMs: 60_000, run: 'r' },
    );
    const nodes = new Map(view.input.nodes.map((n) => [n.id, n]));
    expect(nodes.get('q')?.drivers).toEqual(['wasm', 'qemu']);
    expect(nodes.get('w')?.drivers).toEqual(['wasm']);
    const vms = new Map(view.input.vms.map((v) => [v.id, v]));
    expect(vms.get('x')?.driver).toBe('qemu');
    expect(vms.get('p')?.driver).toBeUndefined();
  });
});
