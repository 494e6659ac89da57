// Node lookups the route modules share.
import type { Clients } from '../../shared/storage/clients.ts';
import { nodeKey } from '../../shared/storage/keys.ts';
import { listNodes, type NodeRecord } from '../../shared/storage/nodes.ts';
import { getItem } from '../../shared/storage/table.ts';

export const findNode = (clients: Clients, id: string) => getItem<NodeRecord>(clients, nodeKey(id));

export async function listNodesById(clients: Clients): Promise<Map<string, NodeRecord>> {
  return new Map((await listNodes(clients)).map((node) => [node.id, node]));
}
