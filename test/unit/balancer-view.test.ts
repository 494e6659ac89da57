// The run's input building takes shortcuts (one shard holds every node without hashing its id; the
// VMs' fences, nodes and loads sit in typed arrays): the view it builds is the one the general path
// builds, VM for VM.
import { describe, expect, it } from 'vitest';
import { roundView, type ViewOptions } from '../../functions/balancer/input.ts';
import { shardOf } from '../../shared/domain/shards.ts';
import type { VmInfo } from '../../shared/domain/types.ts';
import type { ReportedVm } from '../../shared/storage/nodes.ts';
import { variedRecords } from './golden/scenarios.ts';

const options = (over: Partial<ViewOptions> = {}): ViewOptions => ({
  now: 1_700_000_000_000,
  round: 4,
  shard: 0,
  shards: 1,
  reportStaleMs: 30_000,
  run: 'r',
  ...over,
});

describe('roundView', () => {
  const records = variedRecords(300, 17);

  it('puts every node item in the one shard, as the shard hash does', () => {
    const view = roundView(records, options());
    expect(view.inShard).toBe(records.length);
    expect(records.every((r) => shardOf(r.id, 4, 1) === 0)).toBe(true);
    const ids = new Set([...view.input.nodes.map((n) => n.id), ...view.skipped.map((s) => s.node)]);
    expect(ids.size).toBe(records.length);
  });

  it('still rejects a round that is not an integer, as the shard hash does', () => {
    expect(() => roundView(records, options({ round: 1.5 }))).toThrow(RangeError);
  });

  it('hands the round each VM with its node, its load there and the fence it was reported under', () => {
    const view = roundView(records, options());
    const { vms, nodes, vmLoads } = view.input;
    expect(vmLoads?.node).toHaveLength(vms.length);
    const reported = new Map(records.map((r) => [r.id, r.report?.vms ?? {}]));
    vms.forEach((vm: VmInfo, k) => {
      const node = nodes[vmLoads?.node[k] as number];
      expect(node?.id).toBe(vm.node);
      const entry = reported.get(vm.node)?.[vm.id] as ReportedVm;
      expect(view.fenceOf(vm.id, vm.node)).toBe(entry.fence);
      const w = node?.weights ?? { cpu: 0, io: 0, mem: 0 };
      const f = vm.factors;
      const load =
        w.cpu * f.cpu +
        w.io * f.io +
        w.mem * f.mem +
        (w.paging ?? 0) * (f.paging ?? 0) +
        (w.net ?? 0) * (f.net ?? 0);
      expect(vmLoads?.load[k]).toBe(load);
      expect(view.vmAt(vm.id)).toBe(k);
    });
  });

  it('marks both copies of a VM two nodes report as busy and indexes it under the first', () => {
    const view = roundView(records, options());
    const seen = new Map<string, string>();
    let twins = 0;
    for (const r of records) {
      if (!view.input.nodes.some((n) => n.id === r.id)) continue;
      for (const id of Object.keys(r.report?.vms ?? {})) {
        const first = seen.get(id);
        if (first === undefined) {
          seen.set(id, r.id);
          continue;
        }
        twins++;
        const vm = view.input.vms[view.vmAt(id)] as VmInfo;
        expect(vm.node).toBe(first);
        expect(vm.busy).toBe(true);
        expect(view.fenceOf(id, r.id)).toBe(r.report?.vms[id]?.fence);
      }
    }
    expect(twins).toBeGreaterThan(0);
  });

  it('hands over no VM loads when a node item is listed twice, so that the round computes its own', () => {
    expect(roundView(records, options()).input.vmLoads).toBeDefined();
    const taking = roundView(records, options()).input.nodes.map((n) => n.id);
    const twice = records.find((r) => r.id === taking[0]);
    const view = roundView([...records, twice as (typeof records)[number]], options());
    expect(view.input.nodes.filter((n) => n.id === taking[0])).toHaveLength(2);
    expect(view.input.vmLoads).toBeUndefined();
  });

  it("sums each node's load over the VMs it keeps: a VM two nodes report counts on the first alone", () => {
    const view = roundView(records, options());
    const { nodes, vms, vmLoads } = view.input;
    const sums = new Map<string, number>(nodes.map((n) => [n.id, 0]));
    vms.forEach((vm, k) => {
      sums.set(vm.node, (sums.get(vm.node) as number) + (vmLoads?.load[k] as number));
    });
    for (const node of nodes) {
      expect(view.loads.get(node.id)).toBe(node.loadOverride ?? sums.get(node.id));
    }
    const reported = records
      .filter((r) => sums.has(r.id))
      .reduce((n, r) => n + Object.keys(r.report?.vms ?? {}).length, 0);
    expect(vms.length).toBeLessThan(reported);
  });
});
