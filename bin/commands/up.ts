// `seesaw up` (= `npm start`): the whole cluster on one machine.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ensureTableAndBucket, LOCAL_CREDENTIALS, startLocalStores } from '../../shared/local/stores.ts';
import { createClients } from '../../shared/storage/clients.ts';
import { DEFAULT_BUCKET_NAME, DEFAULT_TABLE_NAME } from '../../shared/storage/schema.ts';

export function registerUp(program: Command) {
  program
    .command('up')
    .description('start the local cluster: dynalite, s3rver, and (as they land) the API, balancer and agents')
    .option('--data <dir>', 'where the cluster keeps its data', '.seesaw')
    .option('--dynamo-port <port>', 'DynamoDB API port (0 = any free port)', '8000')
    .option('--s3-port <port>', 'S3 API port (0 = any free port)', '4569')
    .action(async (options: { data: string; dynamoPort: string; s3Port: string }) => {
      const dataDir = resolve(options.data);
      mkdirSync(dataDir, { recursive: true });
      const stores = await startLocalStores({
        dataDir,
        dynamoPort: Number(options.dynamoPort),
        s3Port: Number(options.s3Port),
      });
      const clients = createClients({
        tableName: DEFAULT_TABLE_NAME,
        bucketName: DEFAULT_BUCKET_NAME,
        region: 'us-east-1',
        dynamoEndpoint: stores.dynamoEndpoint,
        s3Endpoint: stores.s3Endpoint,
        credentials: LOCAL_CREDENTIALS,
      });
      const created = await ensureTableAndBucket(clients);
      const endpoints = {
        dynamodb: stores.dynamoEndpoint,
        s3: stores.s3Endpoint,
        table: clients.tableName,
        bucket: clients.bucketName,
        region: 'us-east-1',
        credentials: LOCAL_CREDENTIALS,
      };
      writeFileSync(resolve(dataDir, 'endpoints.json'), `${JSON.stringify(endpoints, null, 2)}\n`);
      console.log(
        `DynamoDB  ${stores.dynamoEndpoint}  table ${clients.tableName}${created.createdTable ? ' (created)' : ''}`,
      );
      console.log(
        `S3        ${stores.s3Endpoint}  bucket ${clients.bucketName}${created.createdBucket ? ' (created)' : ''}`,
      );
      console.log(`data in   ${dataDir}   (Ctrl-C stops)`);
      await new Promise<void>((done) => {
        const stop = () => done();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await stores.close();
      console.log('stopped');
    });
}
