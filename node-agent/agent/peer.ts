// The agent's side of the peer channel (node-agent/peer): finding a peer's advertised address,
// sending it wake-ups and pushed final deltas, and keeping what peers pushed here until the apply
// takes it. Hints only: a message lost, late, repeated or forged costs speed, never state, since
// the receiver acts on the VM item it reads (see wakeOn in agent.ts) and verifies pushed bytes as
// it verifies S3's.
import type { Logger } from '../../shared/runtime/logger.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import type { HeldObject } from '../../shared/storage/image-store.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import type { PushedObject } from '../peer/app.ts';
import type { PeerTransport } from '../peer/transport.ts';

/** A peer's address is looked up again after this long (a restarted agent listens elsewhere). */
const ADDRESS_TTL_MS = 10_000;
/** What pushed objects may hold here at once; a push beyond it is refused (the target downloads). */
export const PUSHED_TOTAL_BYTES = 32 * 1024 * 1024;

export interface PeerLink {
  /** Looks the node's address up in its node item, off any critical path (errors: no address). */
  locate(node: string): Promise<string | undefined>;
  /** The node's address if a recent lookup found one, without waiting. */
  address(node: string): string | undefined;
  /** Tells the node to read VM `vm`'s item now (fire and forget). */
  wake(node: string, vm: string, order: string): void;
  /** Sends a final delta's object to the node; true when it took it. */
  push(node: string, object: PushedObject): Promise<boolean>;
  /** Keeps an object a peer pushed for VM `vm` (one per VM); false when there is no room. */
  keep(object: PushedObject): boolean;
  /** The object pushed for this order and key, handed over once (and forgotten). */
  take(vm: string, order: string, key: string): HeldObject | undefined;
  /** Forgets everything pushed here (the node fenced itself). */
  clear(): void;
}

export function createPeerLink(deps: {
  transport: PeerTransport;
  clients: Clients;
  clock: () => number;
  log: Logger;
  self: string;
}): PeerLink {
  const { transport, clients, clock, log, self } = deps;
  const addresses = new Map<string, { at: number; address: Promise<string | undefined>; known?: string }>();
  const pushed = new Map<string, PushedObject>();
  const held = () => [...pushed.values()].reduce((sum, o) => sum + o.body.byteLength, 0);

  function locate(node: string) {
    const cached = addresses.get(node);
    if (cached && clock() - cached.at < ADDRESS_TTL_MS) return cached.address;
    const entry: { at: number; address: Promise<string | undefined>; known?: string } = {
      at: clock(),
      address: Promise.resolve(undefined),
    };
    entry.address = getNode(clients, node).then(
      (n) => {
        if (n.peerUrl) entry.known = n.peerUrl;
        return n.peerUrl;
      },
      () => undefined,
    );
    addresses.set(node, entry);
    return entry.address;
  }

  /** Sends to the node's address, if it has one; a peer that refuses is only logged. */
  async function send(
    kind: 'wake' | 'push',
    node: string,
    vm: string,
    fn: (address: string) => Promise<boolean>,
  ) {
    const address = await locate(node);
    if (!address) return false;
    const ok = await fn(address);
    if (!ok) log.debug({ node: self, to: node, vm, kind }, 'peer message not taken');
    return ok;
  }

  return {
    locate,
    address: (node) => {
      const cached = addresses.get(node);
      return cached && clock() - cached.at < ADDRESS_TTL_MS ? cached.known : undefined;
    },
    wake(node, vm, order) {
      void send('wake', node, vm, (address) => transport.wake(address, { vm, order })).catch(() => false);
    },
    push: (node, object) =>
      send('push', node, object.vm, (address) => transport.push(address, object)).catch(() => false),
    keep(object) {
      const before = pushed.get(object.vm)?.body.byteLength ?? 0;
      if (held() - before + object.body.byteLength > PUSHED_TOTAL_BYTES) return false;
      pushed.set(object.vm, object);
      return true;
    },
    take(vm, order, key) {
      const object = pushed.get(vm);
      if (!object || object.order !== order) return undefined;
      pushed.delete(vm);
      return object.key === key ? { key, body: object.body } : undefined;
    },
    clear: () => pushed.clear(),
  };
}
