// Builds the SDK clients from one parsed config. Only entry modules call this; everything
// else takes the clients as parameters.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_BUCKET_NAME, DEFAULT_TABLE_NAME } from './schema.ts';

export interface StorageConfig {
  tableName: string;
  bucketName: string;
  region: string;
  /** Set for the local stack (dynalite); unset on AWS. */
  dynamoEndpoint?: string;
  /** Set for the local stack (s3rver); unset on AWS. Implies path-style addressing. */
  s3Endpoint?: string;
  /** Static credentials for the local stores; on AWS the default provider chain is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface Clients {
  dynamo: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  s3: S3Client;
  tableName: string;
  bucketName: string;
}

/** Reads the standard AWS variables plus SEESAW_TABLE / SEESAW_BUCKET. */
export function storageConfigFromEnv(env: NodeJS.ProcessEnv = process.env): StorageConfig {
  const config: StorageConfig = {
    tableName: env.SEESAW_TABLE ?? DEFAULT_TABLE_NAME,
    bucketName: env.SEESAW_BUCKET ?? DEFAULT_BUCKET_NAME,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
  };
  if (env.AWS_ENDPOINT_URL_DYNAMODB) config.dynamoEndpoint = env.AWS_ENDPOINT_URL_DYNAMODB;
  if (env.AWS_ENDPOINT_URL_S3) config.s3Endpoint = env.AWS_ENDPOINT_URL_S3;
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
    config.credentials = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  }
  return config;
}

export function createClients(config: StorageConfig): Clients {
  const common = {
    region: config.region,
    ...(config.credentials ? { credentials: config.credentials } : {}),
  };
  const dynamo = new DynamoDBClient({
    ...common,
    ...(config.dynamoEndpoint ? { endpoint: config.dynamoEndpoint } : {}),
  });
  const doc = DynamoDBDocumentClient.from(dynamo, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  const s3 = new S3Client({
    ...common,
    ...(config.s3Endpoint ? { endpoint: config.s3Endpoint, forcePathStyle: true } : {}),
    // s3rver predates the SDK's default CRC32 trailers; only send checksums where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  return { dynamo, doc, s3, tableName: config.tableName, bucketName: config.bucketName };
}
