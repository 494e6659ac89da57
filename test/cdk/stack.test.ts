// The synthesized template, read as a spec of what `cdk deploy` creates.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { STUCK_MIGRATIONS_METRIC } from '../../cdk/constructs/cluster-alarms.ts';
import {
  BALANCER_MEMORY_MB,
  BALANCER_SEMI_SPACE_MB,
  balancerHeapFlags,
} from '../../functions/balancer/heap.ts';
import { createTableInput, TABLE } from '../../shared/storage/schema.ts';
import { roleStatements, SYNTH_TIMEOUT_MS, type Synthesized, synthSeesaw } from './support.ts';

const CONTEXT = {
  'seesaw:stackName': 'SeesawSpec',
  'seesaw:shards': 3,
  'seesaw:balancerRate': '2 minutes',
  'seesaw:reaperRate': '5 minutes',
  'seesaw:alarmEmail': 'ops@example.com',
};

let s: Synthesized;
beforeAll(() => {
  s = synthSeesaw(CONTEXT);
}, SYNTH_TIMEOUT_MS);

type Resource = { Type: string; Properties: Record<string, unknown>; [k: string]: unknown };
const resources = (type: string) => Object.entries(s.template.findResources(type)) as [string, Resource][];
const only = (type: string) => {
  const all = resources(type);
  expect(all).toHaveLength(1);
  return all[0]![1];
};
const ref = (construct: { node: { defaultChild?: unknown } }) =>
  s.stack.getLogicalId(construct.node.defaultChild as never);
const fnOf = (name: 'api' | 'balancer' | 'reaper') =>
  ({ api: s.stack.api.handler, balancer: s.stack.balancer.handler, reaper: s.stack.reaper.handler })[name];
const functionProps = (name: 'api' | 'balancer' | 'reaper') =>
  s.template.toJSON().Resources[ref(fnOf(name).function)].Properties as Record<string, unknown> & {
    Environment: { Variables: Record<string, unknown> };
  };

describe('the table', () => {
  it('is keyed by pk and sk from shared/storage/schema.ts and billed on demand', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  it('has the same indexes and key attributes as the table the local stack creates', () => {
    const table = only('AWS::DynamoDB::Table').Properties;
    const local = createTableInput('seesaw');
    const byName = <T extends { IndexName: string }>(list: T[]) =>
      [...list].sort((a, b) => a.IndexName.localeCompare(b.IndexName));
    expect(byName(table.GlobalSecondaryIndexes as { IndexName: string }[])).toEqual(
      byName(local.GlobalSecondaryIndexes),
    );
    expect(new Set(table.AttributeDefinitions as unknown[])).toEqual(new Set(local.AttributeDefinitions));
  });

  it('keeps point-in-time recovery on and lets TTL remove items by expiresAt', () => {
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
    });
  });

  it('outlives the stack: retained on delete and deletion-protected', () => {
    s.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({ DeletionProtectionEnabled: true }),
    });
  });
});

describe('the image bucket', () => {
  it('blocks every kind of public access', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
  });

  it('encrypts objects at rest and refuses requests not made over TLS', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
    });
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('keeps a deleted image recoverable for a week, then expires it, and aborts stale uploads', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Status: 'Enabled',
            NoncurrentVersionExpiration: { NoncurrentDays: 7 },
            ExpiredObjectDeleteMarker: true,
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          }),
        ]),
      },
    });
  });

  it('never expires a current image (that would lose a VM); cold images/ move to Intelligent-Tiering', () => {
    const rules = (
      only('AWS::S3::Bucket').Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }
    ).Rules;
    expect(rules.filter((r) => 'ExpirationInDays' in r || 'ExpirationDate' in r)).toEqual([]);
    expect(rules).toContainEqual(
      expect.objectContaining({
        Prefix: 'images/',
        Transitions: [{ StorageClass: 'INTELLIGENT_TIERING', TransitionInDays: 30 }],
      }),
    );
  });

  it('outlives the stack: retained on delete', () => {
    s.template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });
});

describe('the functions', () => {
  it('are the API, the balancer and the reaper, on Node.js 22 and arm64', () => {
    const functions = resources('AWS::Lambda::Function').map(([, r]) => r.Properties);
    expect(functions).toHaveLength(3);
    for (const fn of functions) {
      expect(fn).toMatchObject({ Runtime: 'nodejs22.x', Architectures: ['arm64'], Handler: 'index.handler' });
    }
  });

  it('name the table and the bucket in SEESAW_TABLE and SEESAW_BUCKET', () => {
    for (const name of ['api', 'balancer', 'reaper'] as const) {
      expect(functionProps(name).Environment.Variables).toMatchObject({
        SEESAW_TABLE: { Ref: ref(s.stack.storage.table) },
        SEESAW_BUCKET: { Ref: ref(s.stack.storage.bucket) },
      });
      expect(functionProps(name).Environment.Variables.NODE_OPTIONS).toMatch(/^--enable-source-maps( |$)/);
    }
  });

  it('size the balancer heap in NODE_OPTIONS: a 32 MiB semi-space, an old space within its memory', () => {
    const options = functionProps('balancer').Environment.Variables.NODE_OPTIONS as string;
    expect(options).toBe(['--enable-source-maps', ...balancerHeapFlags(BALANCER_MEMORY_MB)].join(' '));
    expect(options).toContain(`--max-semi-space-size=${BALANCER_SEMI_SPACE_MB}`);
    expect(BALANCER_SEMI_SPACE_MB).toBe(32);
    const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(options)?.[1]);
    // The young generation is three semi-spaces; with the old space they leave a tenth of the memory.
    expect(oldSpace + 3 * BALANCER_SEMI_SPACE_MB).toBeLessThanOrEqual(0.9 * BALANCER_MEMORY_MB);
    expect(oldSpace).toBeGreaterThan(BALANCER_MEMORY_MB / 2);
    expect(functionProps('balancer').MemorySize).toBe(BALANCER_MEMORY_MB);
    for (const name of ['api', 'reaper'] as const) {
      expect(functionProps(name).Environment.Variables.NODE_OPTIONS).toBe('--enable-source-maps');
    }
  });

  it('give the balancer NODE_OPTIONS that Node.js takes from the environment and sizes its heap by', () => {
    const options = functionProps('balancer').Environment.Variables.NODE_OPTIONS as string;
    const limit = execFileSync(
      process.execPath,
      ['-e', 'process.stdout.write(String(require("v8").getHeapStatistics().heap_size_limit))'],
      { env: { ...process.env, NODE_OPTIONS: options }, encoding: 'utf8' },
    );
    const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(options)?.[1]);
    // V8's heap limit is the old space plus the young generation (three semi-spaces).
    expect(Number(limit) / 2 ** 20).toBe(oldSpace + 3 * BALANCER_SEMI_SPACE_MB);
  });

  it('trace with X-Ray and name their Powertools service and metrics namespace', () => {
    for (const name of ['api', 'balancer', 'reaper'] as const) {
      expect(functionProps(name).TracingConfig).toEqual({ Mode: 'Active' });
      expect(functionProps(name).Environment.Variables).toMatchObject({
        POWERTOOLS_SERVICE_NAME: `seesaw-${name}`,
        POWERTOOLS_METRICS_NAMESPACE: 'Seesaw',
      });
    }
  });

  it('bundle the real handler entry files into minified ESM with source maps', () => {
    // Strings that survive minification and exist only in each real handler's module graph.
    const marks = { api: 'SEESAW_AUTH', balancer: 'seesaw-balancer', reaper: 'seesaw-reaper' } as const;
    for (const name of ['api', 'balancer', 'reaper'] as const) {
      const key = (functionProps(name).Code as { S3Key: string }).S3Key;
      const dir = path.join(s.outdir, `asset.${key.replace(/\.zip$/, '')}`);
      const code = readFileSync(path.join(dir, 'index.mjs'), 'utf8');
      expect(code, name).toContain(marks[name]);
      // An unminified esbuild bundle heads each module with a `// path/to/module.ts` comment.
      expect(code, `${name} is minified`).not.toMatch(/^\/\/ shared\/storage\//m);
      expect(existsSync(path.join(dir, 'index.mjs.map')), `${name} has a source map`).toBe(true);
    }
  });

  it('each write to their own log group, kept for a month', () => {
    for (const name of ['api', 'balancer', 'reaper'] as const) {
      expect(functionProps(name).LoggingConfig).toEqual({ LogGroup: { Ref: ref(fnOf(name).logGroup) } });
      s.template.hasResource('AWS::Logs::LogGroup', {
        Properties: { RetentionInDays: 30 },
        DeletionPolicy: 'Delete',
      });
    }
  });

  it('let the API trust the gateway for authentication (SEESAW_AUTH=gateway)', () => {
    expect(functionProps('api').Environment.Variables.SEESAW_AUTH).toBe('gateway');
  });

  it('tell the balancer its round length and both scheduled functions their cluster name', () => {
    expect(functionProps('balancer').Environment.Variables).toMatchObject({
      SEESAW_BALANCER_ROUND_MS: '120000',
      SEESAW_CLUSTER: 'SeesawSpec',
    });
    expect(functionProps('reaper').Environment.Variables.SEESAW_CLUSTER).toBe('SeesawSpec');
  });
});

describe('the HTTP API', () => {
  it('requires IAM (SigV4) on every route except the health check, the static page and the dashboard mirror', () => {
    const routes = Object.fromEntries(
      resources('AWS::ApiGatewayV2::Route').map(([, r]) => [
        r.Properties.RouteKey,
        r.Properties.AuthorizationType,
      ]),
    );
    expect(routes).toEqual({
      $default: 'AWS_IAM',
      'GET /healthz': 'NONE',
      'GET /': 'NONE',
      'GET /dashboard/{file}': 'NONE',
      // The dashboard's mirror of /v1, for operators signed in to the user pool (fleet.test.ts).
      'ANY /ui/v1/{proxy+}': 'JWT',
    });
  });

  it('sends every request to the API function', () => {
    s.template.resourceCountIs('AWS::ApiGatewayV2::Integration', 1);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      IntegrationUri: { 'Fn::GetAtt': [ref(s.stack.api.handler.function), 'Arn'] },
    });
  });

  it('logs access to CloudWatch and throttles its stage', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: Match.objectLike({ DestinationArn: Match.anyValue() }),
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
    });
  });
});

describe('the schedules', () => {
  const schedulesOf = (fn: 'balancer' | 'reaper') =>
    resources('AWS::Scheduler::Schedule')
      .map(([, r]) => r.Properties as { ScheduleExpression: string; Target: Record<string, unknown> })
      .filter(
        (p) =>
          JSON.stringify(p.Target.Arn) === JSON.stringify({ 'Fn::GetAtt': [ref(fnOf(fn).function), 'Arn'] }),
      );

  it('start one balancer run per shard each period, each told its shard and the shard count', () => {
    const inputs = schedulesOf('balancer').map((p) => JSON.parse(p.Target.Input as string));
    expect(inputs).toHaveLength(3);
    expect(inputs).toEqual(
      expect.arrayContaining([
        { shard: 0, shards: 3 },
        { shard: 1, shards: 3 },
        { shard: 2, shards: 3 },
      ]),
    );
  });

  it('fire the balancer at the rate from context and never retry a late round', () => {
    for (const schedule of schedulesOf('balancer')) {
      expect(schedule).toMatchObject({
        ScheduleExpression: 'rate(2 minutes)',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: { RetryPolicy: { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 } },
      });
    }
  });

  it('run the reaper on its own schedule', () => {
    const reaper = schedulesOf('reaper');
    expect(reaper).toHaveLength(1);
    expect(reaper[0]!.ScheduleExpression).toBe('rate(5 minutes)');
  });

  it('invoke through roles that may invoke their own function and nothing else', () => {
    for (const fn of ['balancer', 'reaper'] as const) {
      const roleArn = schedulesOf(fn)[0]!.Target.RoleArn as { 'Fn::GetAtt': [string, string] };
      const statements = roleStatements(s.template, roleArn['Fn::GetAtt'][0]);
      expect(statements.map(({ Action, Resource }) => ({ Action, Resource }))).toEqual([
        { Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [ref(fnOf(fn).function), 'Arn'] } },
      ]);
      s.template.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: {
          Statement: [
            Match.objectLike({
              Principal: { Service: 'scheduler.amazonaws.com' },
              Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
            }),
          ],
        },
      });
    }
  });
});

describe('the alarms', () => {
  const alarm = (construct: { node: { defaultChild?: unknown } }) =>
    s.template.toJSON().Resources[ref(construct)].Properties as Record<string, unknown>;

  it('page when balancer rounds fail in two of three 5-minute periods', () => {
    expect(alarm(s.stack.alarms.balancerErrors)).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ref(s.stack.balancer.handler.function) } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 2,
      TreatMissingData: 'notBreaching',
    });
  });

  it('page when migrations stay past their deadline across reaper runs (Seesaw/StuckMigrations)', () => {
    // The `service` dimension Powertools files the reaper's metrics under (see metrics.test.ts).
    expect(alarm(s.stack.alarms.stuckMigrations).Dimensions).toEqual([
      { Name: 'service', Value: 'seesaw-reaper' },
    ]);
    expect(alarm(s.stack.alarms.stuckMigrations)).toMatchObject({
      Namespace: STUCK_MIGRATIONS_METRIC.namespace,
      MetricName: STUCK_MIGRATIONS_METRIC.metricName,
      Statistic: 'Maximum',
      // At least the reaper's period (5 minutes here), so every period holds a run.
      Period: 300,
      Threshold: 1,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
  });

  it('also watch reaper failures and API 5xx answers', () => {
    expect(alarm(s.stack.alarms.reaperErrors)).toMatchObject({
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: ref(s.stack.reaper.handler.function) } }],
    });
    expect(alarm(s.stack.alarms.apiServerErrors)).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: ref(s.stack.api.httpApi) } }],
    });
  });

  it('notify one topic on alarm and on recovery; the topic mails the address from context', () => {
    const topic = { Ref: ref(s.stack.alarms.topic) };
    for (const [, a] of resources('AWS::CloudWatch::Alarm')) {
      expect(a.Properties).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
    }
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    s.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: topic,
    });
  });
});

describe('without -c agents', () => {
  it('the stack has no hosts, no VPC and no instance profile (fleet.test.ts covers -c agents=N)', () => {
    expect(s.stack.fleet).toBeUndefined();
    for (const type of ['AWS::EC2::VPC', 'AWS::EC2::LaunchTemplate', 'AWS::IAM::InstanceProfile'])
      s.template.resourceCountIs(type, 0);
  });
});

describe('the outputs', () => {
  it('give the API URL, the user pool, the table, the bucket, the two managed policies, the alarm topic and the region', () => {
    const outputs = s.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs).sort()).toEqual(
      [
        'AgentPolicyArn',
        'AlarmTopicArn',
        'ApiInvokePolicyArn',
        'ApiUrl',
        'BucketName',
        'Region',
        'TableName',
        'UserPoolId',
      ].sort(),
    );
    expect(outputs.TableName!.Value).toEqual({ Ref: ref(s.stack.storage.table) });
    expect(outputs.BucketName!.Value).toEqual({ Ref: ref(s.stack.storage.bucket) });
    expect(outputs.AgentPolicyArn!.Value).toEqual({ Ref: ref(s.stack.agentPolicy.policy) });
    expect(JSON.stringify(outputs.ApiUrl!.Value)).toContain(ref(s.stack.api.httpApi));
  });
});
