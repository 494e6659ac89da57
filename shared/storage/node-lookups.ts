// Node reads the API shares: one node that may be absent, and every node by id.
import type { Clients } from './clients.ts';
import { nodeKey } from './keys.ts';
import { listNodes, type NodeRecord } from './nodes.ts';
import { getItem } from './table.ts';

/** The node item, or undefined when no node has that id. */
export function findNode(clients: Clients, id: string): Promise<NodeRecord | undefined> {
  return getItem<NodeRecord>(clients, nodeKey(id));
}

/** Every node, keyed by id. */
export async function listNodesById(clients: Clients): Promise<Map<string, NodeRecord>> {
  return new Map((await listNodes(clients)).map((node) => [node.id, node]));
}
