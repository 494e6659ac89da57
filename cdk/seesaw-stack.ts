// One stack, composed from one construct per concern. Sizes and names come from settings.ts.
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AgentPolicy } from './constructs/agent-policy.ts';
import { BalancerSchedule } from './constructs/balancer-schedule.ts';
import { ClusterAlarms } from './constructs/cluster-alarms.ts';
import { ClusterStorage } from './constructs/cluster-storage.ts';
import { ControlPlaneApi } from './constructs/control-plane-api.ts';
import { ReaperSchedule } from './constructs/reaper-schedule.ts';
import { DEFAULT_ENTRIES, type Entries } from './constructs/seesaw-function.ts';
import type { SeesawSettings } from './settings.ts';

export interface SeesawStackProps extends StackProps {
  settings: SeesawSettings;
  /** Handler entry files (relative to the repository root); defaults to the real handlers. */
  entries?: Partial<Entries>;
}

export class SeesawStack extends Stack {
  readonly storage: ClusterStorage;
  readonly api: ControlPlaneApi;
  readonly balancer: BalancerSchedule;
  readonly reaper: ReaperSchedule;
  readonly alarms: ClusterAlarms;
  readonly agentPolicy: AgentPolicy;

  constructor(scope: Construct, id: string, props: SeesawStackProps) {
    super(scope, id, { description: 'Seesaw: VM load balancing control plane', ...props });
    const { settings } = props;
    const entries: Entries = { ...DEFAULT_ENTRIES, ...props.entries };

    this.storage = new ClusterStorage(this, 'Storage');
    const { table, bucket } = this.storage;
    this.api = new ControlPlaneApi(this, 'Api', { entry: entries.api, table, bucket });
    this.balancer = new BalancerSchedule(this, 'Balancer', {
      entry: entries.balancer,
      table,
      bucket,
      rate: settings.balancerRate,
      shards: settings.shards,
      cluster: this.stackName,
    });
    this.reaper = new ReaperSchedule(this, 'Reaper', {
      entry: entries.reaper,
      table,
      bucket,
      rate: settings.reaperRate,
      cluster: this.stackName,
    });
    this.alarms = new ClusterAlarms(this, 'Alarms', {
      cluster: this.stackName,
      balancer: this.balancer.handler.function,
      reaper: this.reaper.handler.function,
      api: this.api.httpApi,
      reaperRate: settings.reaperRate,
      ...(settings.alarmEmail ? { email: settings.alarmEmail } : {}),
    });
    this.agentPolicy = new AgentPolicy(this, 'Agents', { table, bucket });

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    output('ApiUrl', this.api.url, 'HTTP API base URL (SigV4-signed requests; GET /healthz is open)');
    output('TableName', table.tableName, 'DynamoDB table: set SEESAW_TABLE to this');
    output('BucketName', bucket.bucketName, 'S3 image bucket: set SEESAW_BUCKET to this');
    output('AgentPolicyArn', this.agentPolicy.policy.managedPolicyArn, 'Attach to the node instance role');
    output('ApiInvokePolicyArn', this.api.invokePolicy.managedPolicyArn, 'Attach to operators of the API');
    output('AlarmTopicArn', this.alarms.topic.topicArn, 'SNS topic the alarms notify');
    output('Region', this.region, 'Region of the table and bucket (AWS_REGION for agents)');
  }
}
