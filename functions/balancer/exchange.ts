// One exchange of a run (or of an applied plan): claim both nodes of the pair, then order each move
// on its VM item, conditional on the fence the run read. Lost races are normal outcomes, recorded.
// A node may be in several exchanges of one run (a giver that spills to further partners): the run's
// claims (runClaims) book it once for all of them.
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
  /** The run's bookings, shared by all its exchanges (see runClaims). */
  claims: RunClaims;
}

/** The nodes of one exchange, as the run's claims count them. */
type Pair = Pick<PairDecision, 'requester' | 'selected'>;

/** A run's claims on its nodes, shared by every exchange of the run. */
export interface RunClaims {
  /** Books `node` for the run at `now`: claims it, or reuses the run's own live claim. Throws as claimNode. */
  hold(node: string, now: number): Promise<void>;
  /** One exchange of the run is over; `wrote` says whether it wrote an order (which touches both its nodes). */
  finish(pair: Pair, wrote: boolean): Promise<void>;
}

/** The distinct nodes of a pair in id order: the order claims are taken and released in. */
const nodesOf = (pair: Pair) => [...new Set([pair.requester, pair.selected])].sort();

/** Where a run stands with one node: its exchanges not yet over, whether any wrote, and its claim. */
interface Booking {
  pending: number;
  wrote: boolean;
  /** The claim write in flight or done, resolving to its `until`; unset until needed or after a store error. */
  claim?: Promise<number>;
  held: boolean;
}

/**
 * The claims of one run whose `pairs` are its exchanges. A node is claimed once, by the first exchange
 * that needs it, and later exchanges of the run reuse that claim (renewed when less than half its TTL
 * is left, so a long run never relies on a lapsed one); a claim lost to another run is lost for every
 * exchange of this run on that node. The run releases a node early only when every one of its
 * exchanges on the node is over and none wrote an order; otherwise the claim lapses on its own, booking
 * the node until the agents' reports show the orders.
 */
export function runClaims(
  clients: Clients,
  run: Pick<RunContext, 'id' | 'options'>,
  pairs: readonly Pair[],
): RunClaims {
  const ttl = run.options.claimTtlMs ?? EXCHANGE_DEFAULTS.claimTtlMs;
  const bookings = new Map<string, Booking>();
  const bookingOf = (node: string) => {
    let booking = bookings.get(node);
    if (!booking) {
      booking = { pending: 0, wrote: false, held: false };
      bookings.set(node, booking);
    }
    return booking;
  };
  for (const pair of pairs) for (const node of nodesOf(pair)) bookingOf(node).pending++;
  return {
    async hold(node, now) {
      const booking = bookingOf(node);
      if (booking.claim && (await booking.claim) - now >= ttl / 2) return;
      const until = now + ttl;
      const claim = claimNode(clients, { id: node, run: run.id, now, until }).then(() => until);
      booking.claim = claim;
      try {
        await claim;
        booking.held = true;
      } catch (error) {
        // Lost to another run: it stays lost for the run. A store error: the next exchange tries again.
        if (error instanceof ConditionFailed) booking.held = false;
        else if (booking.claim === claim) delete booking.claim;
        throw error;
      }
    },
    async finish(pair, wrote) {
      for (const node of nodesOf(pair)) {
        const booking = bookingOf(node);
        booking.pending--;
        booking.wrote ||= wrote;
        if (booking.pending > 0 || booking.wrote || !booking.held) continue;
        booking.held = false;
        await release(clients, node, run.id).catch(() => undefined);
      }
    },
  };
}

/**
 * One exchange (also an applied plan's): book both nodes through the run's claims (in id order, so two runs meet on the
 * same node first), then order each move on its VM item. A lost claim or a changed VM is a normal outcome of overlapping runs.
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
  let claimed = 0;
  const nodes = nodesOf(pair);
  try {
    for (const node of nodes) {
      await run.claims.hold(node, now);
      claimed++;
    }
  } catch (error) {
    const taken = nodes[claimed];
    const lost = error instanceof ConditionFailed;
    if (lost) log.info({ run: run.id, pair: nodes, node: taken }, 'claim lost to another run');
    else log.warn({ run: run.id, pair: nodes, node: taken, err: error }, 'claim failed');
    await run.claims.finish(pair, false);
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
  try {
    await orderMoves(clients, log, pair.moves, { run, now, migrationId, orders, written });
  } finally {
    await run.claims.finish(pair, written.length > 0);
  }
  return { orders, written };
}

/** Orders each move on its VM item, conditional on the fence the run read; records every outcome. */
async function orderMoves(
  clients: Clients,
  log: Logger,
  moves: readonly Move[],
  at: {
    run: RunContext;
    now: number;
    migrationId: (k: number) => string;
    orders: RunOrder[];
    written: Move[];
  },
): Promise<void> {
  const { run, now, migrationId, orders, written } = at;
  const deadline = now + (run.options.orderDeadlineMs ?? EXCHANGE_DEFAULTS.orderDeadlineMs);
  for (const [k, move] of moves.entries()) {
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
}

const moveIds = (move: Move) => ({ vm: move.vm, from: move.from, to: move.to });

async function release(clients: Clients, node: string, run: string): Promise<void> {
  try {
    await releaseClaim(clients, node, run);
  } catch (error) {
    // Someone else's claim replaced ours after it lapsed: nothing of ours to release.
    if (!(error instanceof ConditionFailed)) throw error;
  }
}
