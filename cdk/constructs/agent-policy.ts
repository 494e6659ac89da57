// The managed policy for node agents. Agents run on the cluster's own machines (not in Lambda)
// under an instance role; this policy is everything the protocol lets a node do, and no more.

import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { migrationKey, nodeKey, vmKey } from '../../shared/storage/keys.ts';
import { BUCKET_PREFIXES } from './cluster-storage.ts';
import { itemStatement, listStatement, objectStatement, queryStatement } from './data-access.ts';
import { acknowledgeObjectPrefixes } from './nag-reasons.ts';

/**
 * Partition-key prefixes of the items an agent reads and writes: its node (registration, lease,
 * reports), the VMs it runs or is ordered to take, and migration history records.
 */
export const AGENT_ITEM_KEY_PREFIXES = [nodeKey, vmKey, migrationKey].map((key) => key('').pk);
/** An agent deletes only VM items: the owner removes a VM in state DELETING once it has stopped it. */
export const AGENT_DELETE_KEY_PREFIXES = [vmKey('').pk];

export interface AgentPolicyProps {
  table: dynamodb.ITable;
  bucket: s3.IBucket;
}

export class AgentPolicy extends Construct {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: AgentPolicyProps) {
    super(scope, id);
    const { table, bucket } = props;
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description:
        'Seesaw node agent: conditional reads and writes of node, VM and migration items; ' +
        'VM images; read-only guest modules.',
      statements: [
        itemStatement('ProtocolItems', table, ['GetItem', 'PutItem', 'UpdateItem'], AGENT_ITEM_KEY_PREFIXES),
        itemStatement('RemoveDeletedVms', table, ['DeleteItem'], AGENT_DELETE_KEY_PREFIXES),
        // The VMs filed under this node (owned, or ordered to it), and the live nodes a stuck
        // hand-over may be settled on.
        queryStatement('FindWork', table, ['byOwner', 'byKind']),
        objectStatement(
          'ReadWriteImages',
          bucket,
          ['GetObject', 'PutObject', 'DeleteObject'],
          [BUCKET_PREFIXES.images],
        ),
        listStatement('FindVmImages', bucket, [BUCKET_PREFIXES.images]),
        objectStatement('ReadModules', bucket, ['GetObject'], [BUCKET_PREFIXES.modules]),
      ],
    });
    acknowledgeObjectPrefixes(
      this.policy,
      bucket,
      [BUCKET_PREFIXES.images, BUCKET_PREFIXES.modules],
      'an agent writes and reads the images of the VMs it runs, removes those of VMs it deletes, ' +
        'and reads guest modules',
    );
  }
}
