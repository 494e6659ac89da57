// Counts every DynamoDB operation of one run, with the capacity DynamoDB says it consumed: the
// run's Clients are wrapped so each command asks for ReturnConsumedCapacity and is tallied.
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Clients } from './clients.ts';
import { newUsage, type Usage } from './table.ts';

export { newUsage, type Usage };

interface Capacity {
  CapacityUnits?: number;
  ReadCapacityUnits?: number;
  WriteCapacityUnits?: number;
}

type Kind = 'get' | 'query' | 'batch-get' | 'write' | 'other';

// instanceof rather than class names, which a minifying bundler may change.
function kindOf(command: unknown): Kind {
  if (command instanceof GetCommand) return 'get';
  if (command instanceof QueryCommand || command instanceof ScanCommand) return 'query';
  if (command instanceof BatchGetCommand) return 'batch-get';
  if (
    command instanceof PutCommand ||
    command instanceof UpdateCommand ||
    command instanceof DeleteCommand ||
    command instanceof BatchWriteCommand
  )
    return 'write';
  return 'other';
}

function units(consumed: Capacity | Capacity[] | undefined): number {
  if (!consumed) return 0;
  const list = Array.isArray(consumed) ? consumed : [consumed];
  return list.reduce(
    (sum, c) => sum + (c.CapacityUnits ?? (c.ReadCapacityUnits ?? 0) + (c.WriteCapacityUnits ?? 0)),
    0,
  );
}

function itemsRead(kind: Kind, out: Record<string, unknown>): number {
  if (kind === 'get') return out.Item ? 1 : 0;
  if (kind === 'batch-get') {
    const responses = (out.Responses ?? {}) as Record<string, unknown[]>;
    return Object.values(responses).reduce((n, items) => n + items.length, 0);
  }
  return (out.ScannedCount as number | undefined) ?? (out.Count as number | undefined) ?? 0;
}

/** Clients whose document client counts into `usage`; the wrapped clients are unchanged. */
export function meteredClients(clients: Clients, usage: Usage): Clients {
  const inner = clients.doc;
  const doc = Object.create(inner) as DynamoDBDocumentClient;
  const send = async (command: { input: Record<string, unknown> }) => {
    const kind = kindOf(command);
    if (kind !== 'other') command.input.ReturnConsumedCapacity = 'TOTAL';
    try {
      const out = (await inner.send(command as never)) as Record<string, unknown>;
      if (kind === 'get' || kind === 'query' || kind === 'batch-get') {
        usage.reads += itemsRead(kind, out ?? {});
        usage.readCapacity += units(out?.ConsumedCapacity as Capacity | undefined);
      } else if (kind === 'write') {
        usage.writes += 1;
        usage.writeCapacity += units(out?.ConsumedCapacity as Capacity | undefined);
      }
      return out;
    } catch (error) {
      // A write whose condition failed still costs a write.
      if (kind === 'write') usage.writes += 1;
      throw error;
    }
  };
  Object.defineProperty(doc, 'send', { value: send });
  return { ...clients, doc };
}
