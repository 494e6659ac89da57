// The balancer's input carries the drivers: a node's `qemu` label becomes the drivers it offers, and
// a VM's reported driver becomes the one it needs, so decideRound keeps qemu VMs on qemu nodes.
import { describe, expect, it } from 'vitest';
import { roundView } from '../../functions/balancer/input.ts';
import type { NodeRecord, ReportedVm } from '../../shared/storage/nodes.ts';

const NOW = 1_000_000;
const entry = (over: Partial<ReportedVm> = {}): ReportedVm => ({
  factors: { cpu: 1, io: 0, mem: 0 },
  load: 1,
  memPages: 16,
  pinned: false,
  fence: 1,
  busy: false,
  digest: 'd',
  ...over,
});
const aRecord = (
  id: string,
  labels: Record<string, string>,
  vms: Record<string, ReportedVm>,
): NodeRecord => ({
  id,
  weights: { cpu: 1, io: 0, mem: 0 },
  capacity: 4,
  memCapacityPages: 1024,
  draining: false,
  labels,
  incarnation: 'i',
  leaseUntil: NOW + 10_000,
  report: { at: NOW, total: Object.keys(vms).length, steal: 0, utilisation: 0, vms },
  registeredAt: 0,
  updatedAt: NOW,
});

describe('roundView and drivers', () => {
  it('reads the drivers each node offers from its labels and the driver each VM needs from its report', () => {
    const view = roundView(
      [aRecord('q', { qemu: 'tcg' }, { x: entry({ driver: 'qemu' }) }), aRecord('w', {}, { p: entry() })],
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
