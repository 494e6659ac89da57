// The managed policy for node agents. Agents run on the cluster's own machines (not in Lambda)
// under an instance role; this policy is everything the protocol lets a node do, and no more.

import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { configKey, migrationKey, nodeKey, vmKey } from '../../shared/storage/keys.ts';
import { BUCKET_PREFIXES } from './cluster-storage.ts';
import { itemStatement, listStatement, objectStatement, queryStatement } from './data-access.ts';
import { acknowledgeObjectPrefixes } from './nag-reasons.ts';

const prefix = (key: (id: string) => { pk: string }) => key('').pk;

/**
 * Partition-key prefixes an agent may touch, per action. It reads its node, the VMs it runs or is
 * ordered to take, and the balancing config; updates its node (registration, lease, reports) and
 * those VMs (every protocol transition); puts migration history records; and deletes VM items
 * (the owner removes a VM in DELETING once it has stopped it).
 */
export const AGENT_KEY_PREFIXES = {
  get: [prefix(nodeKey), prefix(vmKey), prefix(configKey)],
  update: [prefix(nodeKey), prefix(vmKey)],
  put: [prefix(migrationKey)],
  delete: [prefix(vmKey)],
} as const;

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
        'Seesaw node agent: its node, VM and migration items (by key prefix), the balancing config, ' +
        'VM images, and read-only guest modules.',
      statements: [
        itemStatement('ReadProtocolItems', table, ['GetItem'], [...AGENT_KEY_PREFIXES.get]),
        itemStatement('UpdateNodeAndVms', table, ['UpdateItem'], [...AGENT_KEY_PREFIXES.update]),
        itemStatement('RecordMigrations', table, ['PutItem'], [...AGENT_KEY_PREFIXES.put]),
        itemStatement('RemoveDeletedVms', table, ['DeleteItem'], [...AGENT_KEY_PREFIXES.delete]),
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
        objectStatement('ReadQemuImages', bucket, ['GetObject'], [BUCKET_PREFIXES.qemuImages]),
      ],
    });
    acknowledgeObjectPrefixes(
      this.policy,
      bucket,
      [BUCKET_PREFIXES.images, BUCKET_PREFIXES.modules, BUCKET_PREFIXES.qemuImages],
      'an agent writes and reads the images of the VMs it runs, removes those of VMs it deletes, ' +
        'and reads guest modules and qemu images',
    );
  }
}
