// A balancer run's orders as the agents see them, built from a round's decision without the stores:
// numbered pair by pair as runBalancer writes them (`<run>-<n>`, one origin, one orderedAt), so the
// agents' order-taking rule (`bookedByEarlierRun`) can be asked about every order of a run at once.
import { DEFAULT_BALANCING_CONFIG } from '../../shared/domain/config.ts';
import { decideRound } from '../../shared/domain/decide.ts';
import { bookedByEarlierRun, type ProtocolVm } from '../../shared/domain/protocol.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { PairDecision, RoundDecision, VmInfo } from '../../shared/domain/types.ts';
import { builtinScenario } from '../../shared/sim/scenarios.ts';

/** The VM items of a run's orders, as `carryOut` writes them for `pairs` (exchanges that move nothing write nothing). */
export function runOrders(run: string, pairs: readonly PairDecision[], orderedAt: number): ProtocolVm[] {
  const vms: ProtocolVm[] = [];
  let n = 0;
  for (const pair of pairs) {
    for (const move of pair.moves) {
      vms.push({
        id: move.vm,
        owner: move.from,
        state: 'RUNNING',
        fence: 1,
        migration: {
          id: `${run}-${n++}`,
          from: move.from,
          to: move.to,
          phase: 'ORDERED',
          deadline: orderedAt + 60_000,
          orderedAt,
          origin: run,
        },
      });
    }
  }
  return vms;
}

/** How a run's own orders fare with their sources, each source seeing all the run's orders. */
export interface RunDeclines {
  orders: number;
  /** Orders the source declines as written: another of the run's orders on it comes first. */
  declined: number;
  /** Orders the source declines if the run's other orders on it were handed over (IMAGE_READY) first. */
  exposed: number;
  /** Orders whose source also takes, in the run, from a node other than this order's target (spill, drain). */
  mixed: number;
}

/** Asks the agents' rule about every order of one run, against the run's other orders. */
export function runDeclines(orders: readonly ProtocolVm[]): RunDeclines {
  const handedOver = orders.map((vm) => ({
    ...vm,
    migration: { ...(vm.migration as NonNullable<ProtocolVm['migration']>), phase: 'IMAGE_READY' as const },
  }));
  let declined = 0;
  let exposed = 0;
  let mixed = 0;
  for (const vm of orders) {
    const { from, to } = vm.migration as NonNullable<ProtocolVm['migration']>;
    if (bookedByEarlierRun(vm, orders, from)) declined++;
    const others = handedOver.filter((other) => other.id !== vm.id);
    if (bookedByEarlierRun(vm, others, from)) exposed++;
    if (orders.some((other) => other.migration?.to === from && other.migration.from !== to)) mixed++;
  }
  return { orders: orders.length, declined, exposed, mixed };
}

/** The random rounds the decline rate is measured on: every built-in scenario but `large`, small. */
export const MEASURED_SCENARIOS = [
  'uniform',
  'skewed',
  'heterogeneous',
  'hotspot',
  'churn',
  'drain',
] as const;

/** One random round's outcome for the agents' rule. */
export interface RoundDeclines extends RunDeclines {
  scenario: string;
  seed: number;
  round: number;
}

/**
 * `rounds` rounds of a built-in scenario (`nodes` × 10 nodes' worth of VMs), each decided by the
 * domain and its moves applied before the next, as the sim plays them; each round's orders judged.
 */
export function scenarioDeclines(
  scenario: string,
  seed: number,
  options: { nodes: number; rounds: number },
): RoundDeclines[] {
  const cluster = builtinScenario(scenario, createRng(seed), {
    nodes: options.nodes,
    vms: options.nodes * 10,
  });
  const rng = createRng(seed + 1);
  const vms: VmInfo[] = cluster.vms.map((vm) => ({ ...vm }));
  const byId = new Map(vms.map((vm) => [vm.id, vm]));
  const config = DEFAULT_BALANCING_CONFIG;
  let expected: Record<string, number> | undefined;
  const out: RoundDeclines[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const now = round * 60_000;
    const input = { nodes: cluster.nodes, vms, round, now, ...(expected ? { expected } : {}) };
    const decision: RoundDecision = decideRound(input, config, rng);
    expected = decision.expected;
    const orders = runOrders(`run-${round}`, decision.pairs, now);
    out.push({ scenario, seed, round, ...runDeclines(orders) });
    for (const move of decision.moves) {
      const vm = byId.get(move.vm) as VmInfo;
      vm.node = move.to;
      vm.cooldownUntil = now + config.cooldownMs;
    }
  }
  return out;
}
