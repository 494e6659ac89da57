// `seesaw up --qemu`: the local cluster launches its real x86 VM through POST /v1/vms (an id the
// API gave it, placed on a node that offers qemu), and the VM runs: its reported digest advances.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LiveCluster, startCluster } from '../e2e/cluster.ts';

interface VmView {
  id: string;
  owner: string;
  state: string;
  guest: { kind: string };
  memPages: number;
  digest: string | null;
}

describe('seesaw up --qemu', () => {
  let cluster: LiveCluster;
  beforeAll(async () => {
    cluster = await startCluster({ nodes: 2, vms: 2, args: ['--qemu'] });
  }, 300_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('launches the x86 VM through the API, on a qemu node, and it runs', async () => {
    const [, id, owner] = await cluster.until(
      'the x86 VM launch line',
      180_000,
      async () =>
        cluster.output().match(/launched (vm-\S+), a real x86 VM under QEMU \(qemu:counter\), on (\S+)/) ??
        undefined,
    );
    const vm = await cluster.call<VmView>('GET', `/v1/vms/${id}`);
    expect(vm).toMatchObject({ owner, guest: { kind: 'qemu:counter' }, memPages: 256 });
    const node = await cluster.call<{ labels: Record<string, string> }>('GET', `/v1/nodes/${owner}`);
    expect(node.labels.qemu).toMatch(/^(kvm|tcg)$/);
    const first = await cluster.until('the x86 VM running', 120_000, async () => {
      const v = await cluster.call<VmView>('GET', `/v1/vms/${id}`);
      return v.state === 'RUNNING' && v.digest ? v.digest : undefined;
    });
    await cluster.until('its digest to advance', 60_000, async () => {
      const v = await cluster.call<VmView>('GET', `/v1/vms/${id}`);
      return v.digest && v.digest !== first ? v.digest : undefined;
    });
  }, 400_000);
});
