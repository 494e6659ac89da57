// The embedded default: dynalite (DynamoDB API) and s3rver (S3 API) on loopback, so the
// ordinary AWS SDK clients run unchanged against one machine.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DescribeTableCommand, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import dynalite from 'dynalite';
import S3rver from 's3rver';
import { type Clients, createClients } from '../storage/clients.ts';
import { createTableInput, DEFAULT_BUCKET_NAME, DEFAULT_TABLE_NAME, TABLE } from '../storage/schema.ts';

export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface LocalStoresOptions {
  /** Directory for persistent data; omit for in-memory stores (tests). */
  dataDir?: string;
  host?: string;
  /** 0 picks a free port. */
  dynamoPort?: number;
  s3Port?: number;
  /** s3rver needs a directory even when nothing should persist. */
  scratchDir?: string;
}

export interface LocalStores {
  dynamoEndpoint: string;
  s3Endpoint: string;
  close(): Promise<void>;
}

export async function startLocalStores(options: LocalStoresOptions): Promise<LocalStores> {
  const host = options.host ?? '127.0.0.1';
  const dynamoDir = options.dataDir ? join(options.dataDir, 'dynamodb') : undefined;
  const s3Dir = options.dataDir ? join(options.dataDir, 's3') : options.scratchDir;
  if (!s3Dir) throw new Error('startLocalStores needs dataDir or scratchDir for s3rver');
  if (dynamoDir) mkdirSync(dynamoDir, { recursive: true });
  mkdirSync(s3Dir, { recursive: true });

  const dynamo = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(dynamoDir ? { path: dynamoDir } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    dynamo.once('error', reject);
    dynamo.listen(options.dynamoPort ?? 0, host, () => resolve());
  });
  const s3 = new S3rver({ port: options.s3Port ?? 0, address: host, directory: s3Dir, silent: true });
  let s3Address: AddressInfo;
  try {
    s3Address = await s3.run();
  } catch (error) {
    await new Promise((resolve) => dynamo.close(resolve));
    throw error;
  }
  const dynamoAddress = dynamo.address() as AddressInfo;
  return {
    dynamoEndpoint: `http://${host}:${dynamoAddress.port}`,
    s3Endpoint: `http://${host}:${s3Address.port}`,
    async close() {
      await Promise.all([new Promise((resolve) => dynamo.close(resolve)), s3.close()]);
    },
  };
}

/** SDK clients pointed at the local stores (table and bucket default to the deployed names). */
export function localClients(
  stores: Pick<LocalStores, 'dynamoEndpoint' | 's3Endpoint'>,
  names: { tableName?: string; bucketName?: string } = {},
): Clients {
  return createClients({
    tableName: names.tableName ?? DEFAULT_TABLE_NAME,
    bucketName: names.bucketName ?? DEFAULT_BUCKET_NAME,
    region: 'us-east-1',
    dynamoEndpoint: stores.dynamoEndpoint,
    s3Endpoint: stores.s3Endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
}

/**
 * In-memory stores for one run (a benchmark, a script) with a table and bucket named `name`, ready
 * to use; `close` stops them and removes their scratch directory.
 */
export async function startScratchStores(
  name: string,
): Promise<{ clients: Clients; close(): Promise<void> }> {
  const scratch = mkdtempSync(join(tmpdir(), `${name}-`));
  const stores = await startLocalStores({ scratchDir: scratch, dynamoPort: 0, s3Port: 0 });
  const close = async () => {
    await stores.close();
    rmSync(scratch, { recursive: true, force: true });
  };
  const clients = localClients(stores, { tableName: name, bucketName: name });
  await ensureTableAndBucket(clients).catch(async (error) => {
    await close();
    throw error;
  });
  return { clients, close };
}

/** Creates the table (with its indexes and TTL) and the bucket if they are missing; safe to repeat. */
export async function ensureTableAndBucket(
  clients: Clients,
): Promise<{ createdTable: boolean; createdBucket: boolean }> {
  let createdTable = false;
  try {
    await clients.dynamo.send(new DescribeTableCommand({ TableName: clients.tableName }));
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
    await clients.dynamo.send(new CreateTableCommand(createTableInput(clients.tableName)));
    await clients.dynamo
      .send(
        new UpdateTimeToLiveCommand({
          TableName: clients.tableName,
          TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
        }),
      )
      .catch(() => {
        // dynalite does not implement TTL; on AWS the CDK stack sets it.
      });
    createdTable = true;
  }
  let createdBucket = false;
  try {
    await clients.s3.send(new HeadBucketCommand({ Bucket: clients.bucketName }));
  } catch {
    await clients.s3.send(new CreateBucketCommand({ Bucket: clients.bucketName }));
    createdBucket = true;
  }
  return { createdTable, createdBucket };
}
