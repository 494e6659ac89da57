// Built-in scenarios, generated from a seed. Sizes can be overridden; the defaults are the issue's.
import { randomInt } from '../domain/rng.ts';
import type { NodeInfo, Rng, VmInfo, Weights } from '../domain/types.ts';
import type { Scenario } from './types.ts';

const CPU: Weights = { cpu: 1, io: 0, mem: 0 };
/** 256 MiB of guest memory. */
const VM_PAGES = 4096;
const NODE_PAGES = 1 << 30;

export interface ScenarioSize {
  nodes?: number;
  vms?: number;
}

interface Builtin {
  description: string;
  nodes: number;
  vms: number;
  build(rng: Rng, nodes: number, vms: number): Scenario;
}

/** Nodes n000…, capacity set later from the mean load. */
function makeNodes(n: number, weights: (i: number) => Weights = () => CPU): NodeInfo[] {
  const width = String(Math.max(0, n - 1)).length;
  return Array.from({ length: n }, (_, i) => ({
    id: `n${String(i).padStart(width, '0')}`,
    weights: weights(i),
    capacity: 1,
    memCapacityPages: NODE_PAGES,
    draining: false,
  }));
}

function makeVm(i: number, node: string, cpu: number, over: Partial<VmInfo> = {}): VmInfo {
  return {
    id: `vm${i}`,
    node,
    factors: { cpu, io: 0, mem: 0.25 },
    memPages: VM_PAGES,
    pinned: false,
    ...over,
  };
}

/** Capacity 1.5 × the mean node load, so the sender/receiver thresholds mean something. */
function withCapacity(s: Scenario): Scenario {
  const total = s.vms.reduce((sum, v) => sum + v.factors.cpu, 0);
  const capacity = Math.max(1, Math.round(((1.5 * total) / Math.max(1, s.nodes.length)) * 100) / 100);
  for (const n of s.nodes) n.capacity = capacity;
  return s;
}

const between = (rng: Rng, min: number, max: number) => min + rng.next() * (max - min);

/** A fifth of the nodes hold 60% of the VMs; the rest share the remainder evenly at random. */
function skewed(name: string) {
  return (rng: Rng, n: number, v: number): Scenario => {
    const nodes = makeNodes(n);
    const hot = Math.max(1, Math.round(n / 5));
    const vms = Array.from({ length: v }, (_, i) => {
      const node = rng.next() < 0.6 ? randomInt(rng, hot) : hot + randomInt(rng, Math.max(1, n - hot));
      return makeVm(i, (nodes[Math.min(node, n - 1)] as NodeInfo).id, between(rng, 0.5, 1.5));
    });
    return withCapacity({ name, nodes, vms });
  };
}

function uniform(name: string) {
  return (rng: Rng, n: number, v: number): Scenario => {
    const nodes = makeNodes(n);
    const vms = Array.from({ length: v }, (_, i) =>
      makeVm(i, (nodes[randomInt(rng, n)] as NodeInfo).id, between(rng, 0.5, 1.5)),
    );
    return withCapacity({ name, nodes, vms });
  };
}

export const BUILTIN_SCENARIOS: Record<string, Builtin> = {
  uniform: {
    description: 'VMs of load 0.5–1.5 placed uniformly at random',
    nodes: 100,
    vms: 1000,
    build: uniform('uniform'),
  },
  skewed: {
    description: 'a fifth of the nodes hold 60% of the VMs (identical weights)',
    nodes: 1000,
    vms: 10_000,
    build: skewed('skewed'),
  },
  heterogeneous: {
    description: 'fast, normal and slow nodes (CPU weights 0.5, 1, 2) with I/O and memory weights',
    nodes: 100,
    vms: 1000,
    build(rng, n, v) {
      const speeds = [0.5, 1, 2];
      const nodes = makeNodes(n, (i) => ({ cpu: speeds[i % 3] ?? 1, io: 0.2, mem: 0.1 }));
      const vms = Array.from({ length: v }, (_, i) => ({
        ...makeVm(i, (nodes[randomInt(rng, n)] as NodeInfo).id, between(rng, 0.2, 1.5)),
        factors: { cpu: between(rng, 0.2, 1.5), io: between(rng, 0, 2), mem: between(rng, 0.25, 2) },
      }));
      return withCapacity({ name: 'heterogeneous', nodes, vms });
    },
  },
  hotspot: {
    description: 'an even cluster with a few nodes carrying ten times the mean, some VMs pinned or grouped',
    nodes: 100,
    vms: 1000,
    build(rng, n, v) {
      const nodes = makeNodes(n);
      const hot = Math.max(1, Math.round(n / 20));
      const perHot = Math.round(v / n) * 9;
      const vms = Array.from({ length: v }, (_, i) => {
        const node = i < hot * perHot ? i % hot : randomInt(rng, n);
        return makeVm(i, (nodes[Math.min(node, n - 1)] as NodeInfo).id, between(rng, 0.5, 1.5), {
          pinned: i % 50 === 0,
          ...(i % 10 === 1 ? { group: `g${i % 7}` } : {}),
        });
      });
      return withCapacity({ name: 'hotspot', nodes, vms });
    },
  },
  churn: {
    description: 'uniform, with 2% of the VMs leaving and as many arriving on random nodes every round',
    nodes: 100,
    vms: 1000,
    build(rng, n, v) {
      const s = uniform('churn')(rng, n, v);
      const k = Math.max(1, Math.round(v / 50));
      return { ...s, churn: { arrive: k, leave: k, load: { min: 0.5, max: 1.5 } } };
    },
  },
  drain: {
    description: 'uniform, with three nodes draining (they give every VM away and take none)',
    nodes: 100,
    vms: 1000,
    build(rng, n, v) {
      const s = uniform('drain')(rng, n, v);
      for (const node of s.nodes.slice(0, Math.min(3, n - 1))) node.draining = true;
      return s;
    },
  },
  large: {
    description: '10,000 nodes × 100,000 VMs, skewed like `skewed`',
    nodes: 10_000,
    vms: 100_000,
    build: skewed('large'),
  },
};

/** A built-in scenario by name, at its default size or the given one. */
export function builtinScenario(name: string, rng: Rng, size: ScenarioSize = {}): Scenario {
  const builtin = BUILTIN_SCENARIOS[name];
  if (!builtin) {
    throw new Error(`unknown scenario "${name}" (built-in: ${Object.keys(BUILTIN_SCENARIOS).join(', ')})`);
  }
  return builtin.build(rng, size.nodes ?? builtin.nodes, size.vms ?? builtin.vms);
}
