// A migration order written by hand, as the balancer would write it, for tests that move one VM.
import { orderDeadline, type ProtocolTimings } from '../../shared/domain/protocol.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { orderMigration, type VmRecord } from '../../shared/storage/vms.ts';

export interface HandOrder {
  vm: string;
  /** The VM's fence the order is conditional on. */
  fence: number;
  from: string;
  to: string;
  now: number;
  /** The VM's memory: with `timings`, what the deadline allows for. */
  memPages: number;
  /** The order's id; `<vm>-m` unless given. */
  id?: string;
  timings?: ProtocolTimings;
}

/** Orders `vm` from `from` to `to` at `now`, due by the protocol's deadline for its pages; origin `test`. */
export function orderMove(clients: Clients, o: HandOrder): Promise<VmRecord> {
  return orderMigration(clients, o.vm, o.fence, {
    id: o.id ?? `${o.vm}-m`,
    from: o.from,
    to: o.to,
    phase: 'ORDERED',
    deadline: orderDeadline(o.now, o.memPages, o.timings),
    orderedAt: o.now,
    origin: 'test',
  });
}
