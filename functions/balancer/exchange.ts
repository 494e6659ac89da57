// One exchange of a run (or of an applied plan): claim both nodes of the pair, then order each move
// on its VM item, conditional on the fence the run read. Lost races are normal outcomes, recorded.
import type { Move, PairDecision } from '../../shared/domain/types.ts';
import type { MigrationOrder } from '../../shared/domain/vm-state.ts';
import type { Logger as SharedLogger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { ConditionFailed } from '../../shared/storage/errors.ts';
import { claimNode, releaseClaim } from '../../shared/storage/nodes.ts';
import type { RunOrder } from '../../shared/storage/runs.ts';
import { orderMigration } from '../../shared/storage/vms.ts';

/** The slice of the logger the balancer uses. */
export type Logger = Pick<SharedLogger, 'info' | 'warn'>;

/** How long a claim books a node and when an order lapses, unless a run says otherwise. */
export const EXCHANGE_DEFAULTS = { claimTtlMs: 10_000, orderDeadlineMs: 60_000 } as const;

export interface RunContext {
  id: string;
  /** Read at each exchange: a long run must not book nodes with claims that lapsed while it ran. */
  clock: () => number;
  options: { claimTtlMs?: number; orderDeadlineMs?: number };
  fenceOf: (vm: string, node: string) => number | undefined;
}

/**
 * One exchange (also an applied plan's): claim both nodes (in id order, so two runs meet on the same node first), then order
 * each move on its VM item. A lost claim or a changed VM is a normal outcome of overlapping runs.
 */
export async function carryOut(
  clients: Clients,
  log: Logger,
  pair: Pick<PairDecision, 'requester' | 'selected' | 'moves'>,
  first: number,
  run: RunContext,
): Promise<{ orders: RunOrder[]; written: Move[] }> {
  const orders: RunOrder[] = [];
  const written: Move[] = [];
  const migrationId = (k: number) => `${run.id}-${first + k}`;
  const now = run.clock();
  const until = now + (run.options.claimTtlMs ?? EXCHANGE_DEFAULTS.claimTtlMs);
  const claimed: string[] = [];
  const nodes = [pair.requester, pair.selected].sort();
  try {
    for (const node of nodes) {
      await claimNode(clients, { id: node, run: run.id, now, until });
      claimed.push(node);
    }
  } catch (error) {
    const taken = nodes[claimed.length];
    const lost = error instanceof ConditionFailed;
    if (lost) log.info({ run: run.id, pair: nodes, node: taken }, 'claim lost to another run');
    else log.warn({ run: run.id, pair: nodes, node: taken, err: error }, 'claim failed');
    await releaseAll(clients, claimed, run.id).catch(() => undefined);
    for (const [k, move] of pair.moves.entries()) {
      orders.push({
        ...moveIds(move),
        migration: migrationId(k),
        outcome: lost ? 'unclaimed' : 'failed',
        detail: lost ? `${taken} is booked` : String((error as Error).message ?? error),
      });
    }
    return { orders, written };
  }
  const deadline = now + (run.options.orderDeadlineMs ?? EXCHANGE_DEFAULTS.orderDeadlineMs);
  for (const [k, move] of pair.moves.entries()) {
    const order: MigrationOrder = {
      id: migrationId(k),
      from: move.from,
      to: move.to,
      phase: 'ORDERED',
      deadline,
      orderedAt: now,
      origin: run.id,
      predicted: { loadOnSource: move.loadOnSource, loadOnTarget: move.loadOnTarget },
    };
    const fence = run.fenceOf(move.vm, move.from);
    try {
      if (fence === undefined) throw new ConditionFailed('orderMigration', 'no fence in the report');
      await orderMigration(clients, move.vm, fence, order);
      orders.push({ ...moveIds(move), migration: order.id, outcome: 'written' });
      written.push(move);
    } catch (error) {
      if (error instanceof ConditionFailed) {
        log.info({ run: run.id, vm: move.vm, from: move.from, to: move.to }, 'order lost: the VM changed');
        orders.push({ ...moveIds(move), migration: order.id, outcome: 'lost', detail: error.message });
      } else {
        // A store error (throttling, network) loses this order only; the run goes on and records it.
        log.warn({ run: run.id, vm: move.vm, err: error }, 'order failed');
        orders.push({
          ...moveIds(move),
          migration: order.id,
          outcome: 'failed',
          detail: String((error as Error).message),
        });
      }
    }
  }
  if (written.length === 0) await releaseAll(clients, claimed, run.id).catch(() => undefined);
  return { orders, written };
}

const moveIds = (move: Move) => ({ vm: move.vm, from: move.from, to: move.to });

async function releaseAll(clients: Clients, nodes: readonly string[], run: string): Promise<void> {
  for (const node of nodes) {
    try {
      await releaseClaim(clients, node, run);
    } catch (error) {
      // Someone else's claim replaced ours after it lapsed: nothing of ours to release.
      if (!(error instanceof ConditionFailed)) throw error;
    }
  }
}
