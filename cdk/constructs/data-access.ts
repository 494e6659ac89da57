// Policy statements that name exact DynamoDB and S3 actions on exact resources. The CDK's
// grantReadWriteData/grantReadWrite give more (Batch*, Scan, DeleteObject*…) than Seesaw uses.

import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { TABLE } from '../../shared/storage/schema.ts';
import { BUCKET_PREFIXES } from './cluster-storage.ts';

export type ItemAction = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'ConditionCheckItem';
export type IndexName = keyof typeof TABLE.indexes;

/** Item actions on the table, optionally limited to partition keys with the given prefixes (e.g. `NODE#`). */
export function itemStatement(
  sid: string,
  table: dynamodb.ITable,
  actions: ItemAction[],
  keyPrefixes?: string[],
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: actions.map((a) => `dynamodb:${a}`),
    resources: [table.tableArn],
    ...(keyPrefixes
      ? {
          conditions: {
            'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': keyPrefixes.map((p) => `${p}*`) },
          },
        }
      : {}),
  });
}

/** Query on named indexes (and on the base table when `table` is listed). */
export function queryStatement(
  sid: string,
  table: dynamodb.ITable,
  indexes: IndexName[],
  options: { baseTable?: boolean } = {},
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: ['dynamodb:Query'],
    resources: [
      ...(options.baseTable ? [table.tableArn] : []),
      ...indexes.map((i) => `${table.tableArn}/index/${TABLE.indexes[i].name}`),
    ],
  });
}

export type ObjectAction = 'GetObject' | 'PutObject' | 'DeleteObject' | 'PutObjectTagging';

/** Object actions under key prefixes (e.g. `images/`). */
export function objectStatement(
  sid: string,
  bucket: s3.IBucket,
  actions: ObjectAction[],
  prefixes: string[],
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: actions.map((a) => `s3:${a}`),
    resources: prefixes.map((p) => bucket.arnForObjects(`${p}*`)),
  });
}

/** ListBucket, limited to keys under the given prefixes. */
export function listStatement(sid: string, bucket: s3.IBucket, prefixes: string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid,
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
  });
}

/** Removing a deleted VM's images (the API, and the reaper for a VM whose node died): find, then delete. */
export const removeVmImages = (bucket: s3.IBucket): iam.PolicyStatement[] => [
  listStatement('FindVmImages', bucket, [BUCKET_PREFIXES.images]),
  objectStatement('RemoveVmImages', bucket, ['DeleteObject'], [BUCKET_PREFIXES.images]),
];
