// One stack, composed from one construct per concern. Sizes and names come from settings.ts.
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AgentFleet } from './constructs/agent-fleet.ts';
import { AgentPolicy } from './constructs/agent-policy.ts';
import { BalancerSchedule } from './constructs/balancer-schedule.ts';
import { ClusterAlarms } from './constructs/cluster-alarms.ts';
import { ClusterStorage } from './constructs/cluster-storage.ts';
import { ControlPlaneApi } from './constructs/control-plane-api.ts';
import { OperatorSignIn } from './constructs/operator-sign-in.ts';
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
  readonly signIn: OperatorSignIn;
  /** Only with `-c agents=N` (N > 0). */
  readonly fleet?: AgentFleet;

  constructor(scope: Construct, id: string, props: SeesawStackProps) {
    super(scope, id, { description: 'Seesaw: VM load balancing control plane', ...props });
    const { settings } = props;
    const entries: Entries = { ...DEFAULT_ENTRIES, ...props.entries };

    this.storage = new ClusterStorage(this, 'Storage');
    const { table, bucket } = this.storage;
    this.api = new ControlPlaneApi(this, 'Api', { entry: entries.api, table, bucket });
    this.signIn = new OperatorSignIn(this, 'SignIn', {
      dashboardUrl: this.api.url,
      ...(settings.adminEmail ? { adminEmail: settings.adminEmail } : {}),
    });
    this.api.addOperatorRoutes(this.signIn);
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
    if (settings.agents > 0) {
      this.fleet = new AgentFleet(this, 'Fleet', {
        count: settings.agents,
        instanceType: settings.agentInstanceType,
        agentPolicy: this.agentPolicy.policy,
        tableName: table.tableName,
        bucketName: bucket.bucketName,
        alarmTopic: this.alarms.topic,
      });
    }

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    output(
      'ApiUrl',
      this.api.url,
      'HTTP API base URL: the dashboard at /, SigV4-signed /v1 for the CLI, GET /healthz open',
    );
    output('UserPoolId', this.signIn.userPool.userPoolId, 'Cognito user pool of the dashboard operators');
    output('TableName', table.tableName, 'DynamoDB table: set SEESAW_TABLE to this');
    output('BucketName', bucket.bucketName, 'S3 image bucket: set SEESAW_BUCKET to this');
    output('AgentPolicyArn', this.agentPolicy.policy.managedPolicyArn, 'Attach to the node instance role');
    output('ApiInvokePolicyArn', this.api.invokePolicy.managedPolicyArn, 'Attach to operators of the API');
    output('AlarmTopicArn', this.alarms.topic.topicArn, 'SNS topic the alarms notify');
    output('Region', this.region, 'Region of the table and bucket (AWS_REGION for agents)');
    if (this.fleet) {
      output(
        'AgentGroupName',
        this.fleet.group.autoScalingGroupName,
        'Auto Scaling group of the agent hosts',
      );
    }
  }
}
