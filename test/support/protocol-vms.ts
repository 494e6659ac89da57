// A VM item and a migration order as the protocol's pure decisions see them, for unit tests: vm-1,
// RUNNING on node a under fence 3, and an order m-1 from a to b, ORDERED at 0 and due at 10 s.
import type { ProtocolVm } from '../../shared/domain/protocol.ts';
import type { MigrationOrder } from '../../shared/domain/vm-state.ts';

export const aProtocolVm = (over: Partial<ProtocolVm> = {}): ProtocolVm => ({
  id: 'vm-1',
  owner: 'a',
  state: 'RUNNING',
  fence: 3,
  ...over,
});

export const anOrder = (over: Partial<MigrationOrder> = {}): MigrationOrder => ({
  id: 'm-1',
  from: 'a',
  to: 'b',
  phase: 'ORDERED',
  deadline: 10_000,
  orderedAt: 0,
  origin: 'test',
  ...over,
});
