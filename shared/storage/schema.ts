// The one source of truth for the table and the bucket: the local stack creates them from
// these definitions and cdk/ declares the same shapes.

export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  /** Items carrying `expiresAt` (epoch seconds) are removed by DynamoDB TTL. */
  ttlAttribute: 'expiresAt',
  indexes: {
    /** "VMs owned by node X": gsi1pk = OWNER#<node>, gsi1sk = VM#<id>. */
    byOwner: { name: 'byOwner', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    /** "All items of a kind" (nodes, VMs, runs, migrations, modules), in sort-key order. */
    byKind: { name: 'byKind', partitionKey: 'kind', sortKey: 'gsi2sk' },
    /** "Nodes in bucket group G (or bucket B of it)", so a sharded run reads its shard's nodes alone: gsi3pk = BUCKETS#<g>, gsi3sk = <b>#<id>. */
    byBucket: { name: 'byBucket', partitionKey: 'gsi3pk', sortKey: 'gsi3sk' },
  },
} as const;

export const DEFAULT_TABLE_NAME = 'seesaw';
export const DEFAULT_BUCKET_NAME = 'seesaw-images';

/** Every key attribute is a string. */
export const KEY_ATTRIBUTES = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'kind', 'gsi2sk', 'gsi3pk', 'gsi3sk'] as const;

/** CreateTable input for the local stack and the integration tests (on-demand billing). */
export function createTableInput(tableName: string) {
  const { byOwner, byKind, byBucket } = TABLE.indexes;
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST' as const,
    AttributeDefinitions: KEY_ATTRIBUTES.map((name) => ({
      AttributeName: name,
      AttributeType: 'S' as const,
    })),
    KeySchema: [
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' as const },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' as const },
    ],
    GlobalSecondaryIndexes: [byOwner, byKind, byBucket].map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
        { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    })),
  };
}
