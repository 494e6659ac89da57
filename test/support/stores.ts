// Per-test-file storage: a fresh table and bucket on the shared dynalite and s3rver.
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { ensureTableAndBucket, LOCAL_CREDENTIALS, localClients } from '../../shared/local/stores.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import {
  type BlobStore,
  createImageStore,
  type ImageStore,
  s3Blobs,
} from '../../shared/storage/image-store.ts';

/** Endpoints of the run's dynalite and s3rver, as environment variables for child processes. */
export function storeEnv(clients: Clients): Record<string, string> {
  const { dynamoEndpoint, s3Endpoint } = inject('stores');
  return {
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_ENDPOINT_URL_S3: s3Endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    SEESAW_TABLE: clients.tableName,
    SEESAW_BUCKET: clients.bucketName,
  };
}

/** Clients bound to a new, empty table and bucket. */
export async function freshStores(): Promise<Clients> {
  const suffix = randomUUID().slice(0, 8);
  const clients = localClients(inject('stores'), {
    tableName: `seesaw-test-${suffix}`,
    bucketName: `seesaw-test-${suffix}`,
  });
  await ensureTableAndBucket(clients);
  return clients;
}

export interface ImageStores {
  clients: Clients;
  images: ImageStore;
  blobs: BlobStore;
}

/** Clients bound to a new, empty table and bucket, with the image store and the bucket's blobs over them. */
export async function freshImageStores(): Promise<ImageStores> {
  const clients = await freshStores();
  return { clients, images: createImageStore(clients), blobs: s3Blobs(clients) };
}
