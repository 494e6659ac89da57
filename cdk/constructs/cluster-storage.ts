// The table and the image bucket, declared from shared/storage/schema.ts: the same source the
// local stack uses to create them in dynalite and s3rver.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { TABLE } from '../../shared/storage/schema.ts';
import { acknowledge } from './nag-reasons.ts';

/** Key prefixes in the bucket (shared/storage/image-store.ts) and who may touch them. */
export const BUCKET_PREFIXES = {
  /** VM images: images/<vm>/<fence>/<seq>/manifest.json and pack-<n>.bin (immutable keys). */
  images: 'images/',
  /** Registered guest modules: modules/<name>.wasm. */
  modules: 'modules/',
  /** Registered qemu images: user-images/<name>/<sha256>.<role> and image.json (shared/storage/image-registry.ts). */
  qemuImages: 'user-images/',
} as const;

/** Days a deleted image object stays recoverable (as a noncurrent version) before it is gone. */
export const DELETED_OBJECT_RETENTION_DAYS = 7;
/** Days after which image objects move to Intelligent-Tiering (suspended VMs' images go cold). */
export const IMAGE_TIERING_DAYS = 30;

export class ClusterStorage extends Construct {
  readonly table: dynamodb.Table;
  readonly bucket: s3.Bucket;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const key = (name: string) => ({ name, type: dynamodb.AttributeType.STRING });

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: key(TABLE.partitionKey),
      sortKey: key(TABLE.sortKey),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE.ttlAttribute,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      // The cluster's state outlives the stack: `cdk destroy` leaves the table (see "Deploy to AWS" in the README).
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of Object.values(TABLE.indexes)) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: key(index.partitionKey),
        sortKey: key(index.sortKey),
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }

    this.bucket = new s3.Bucket(this, 'Images', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Keys are never overwritten, so versioning costs nothing until something is deleted; then it
      // keeps a deleted image recoverable for a week: a safety net under "a VM is never lost".
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          // Superseded and deleted images (a VM's chain goes when the VM is deleted) and failed uploads.
          id: 'expire-deleted-and-incomplete',
          noncurrentVersionExpiration: Duration.days(DELETED_OBJECT_RETENTION_DAYS),
          expiredObjectDeleteMarker: true,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
        {
          // Suspended VMs' images are written once and read rarely; never expired (that would lose a VM).
          id: 'tier-cold-images',
          prefix: BUCKET_PREFIXES.images,
          transitions: [
            {
              storageClass: s3.StorageClass.INTELLIGENT_TIERING,
              transitionAfter: Duration.days(IMAGE_TIERING_DAYS),
            },
          ],
        },
      ],
    });

    acknowledge(
      this.bucket,
      'AwsSolutions-S1',
      'Server access logs would need a second bucket and log every image read by every node each ' +
        'period; object-level auditing, if wanted, is CloudTrail data events on this bucket.',
    );
  }
}
