// The demo cluster `seesaw up` starts: a small heterogeneous set of nodes and VMs placed unevenly,
// so balancing is visible within a minute.
import type { Weights } from '../../shared/domain/types.ts';
import type { NewVm } from '../../shared/storage/vms.ts';

/** One virtual core, in the kernel's work units per second. */
const CORE = 1_000_000;

export interface DemoNode {
  id: string;
  capacity: number;
  weights: Weights;
  labels: Record<string, string>;
}

const STANDARD: Weights = { cpu: 1, io: 0.2, mem: 0.1, paging: 0.05, net: 0.05 };

/** Node i of n: every fourth node is standard, fast (smaller CPU weight), expensive (larger weights) or standard. */
export function demoNodes(count: number): DemoNode[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `node-${i + 1}`;
    switch (i % 4) {
      case 1:
        return { id, capacity: 3 * CORE, weights: { ...STANDARD, cpu: 0.6 }, labels: { kind: 'fast-cpu' } };
      case 2:
        return {
          id,
          capacity: 2 * CORE,
          weights: { cpu: 1.5, io: 0.3, mem: 0.15, paging: 0.075, net: 0.075 },
          labels: { kind: 'expensive' },
        };
      default:
        return { id, capacity: 2 * CORE, weights: STANDARD, labels: { kind: 'standard' } };
    }
  });
}

/**
 * `count` VMs of mixed guests; about two thirds start on the first node and the rest on the
 * second, so the cluster begins badly skewed.
 */
export function demoVms(count: number, nodes: DemoNode[]): NewVm[] {
  const kinds: { kind: string; params: Record<string, number>; memPages: number }[] = [
    { kind: 'cpu', params: { rate: 0.3 * CORE }, memPages: 16 },
    { kind: 'memory', params: { rate: 0.15 * CORE, wsPages: 32 }, memPages: 64 },
    { kind: 'io', params: { rate: 8_000, diskMiB: 4 }, memPages: 16 },
    { kind: 'cpu', params: { rate: 0.2 * CORE }, memPages: 8 },
    { kind: 'idle', params: {}, memPages: 4 },
  ];
  const first = nodes[0]?.id ?? 'node-1';
  const second = nodes[1]?.id ?? first;
  return Array.from({ length: count }, (_, i) => {
    const template = kinds[i % kinds.length]!;
    return {
      id: `demo-${String(i + 1).padStart(2, '0')}`,
      owner: i % 3 === 2 ? second : first,
      guest: { kind: template.kind, params: template.params },
      memPages: template.memPages,
    };
  });
}
