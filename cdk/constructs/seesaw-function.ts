// One way to build every Seesaw Lambda: an esbuild bundle of a handler entry file (never Docker),
// Node.js 22 on arm64, its own log group with a retention, its own role that can write only to
// that log group, and X-Ray tracing on (Powertools Tracer). The construct that owns the function
// names its data permissions (grants).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, type Service } from '../../functions/services.ts';
import { acknowledge } from './nag-reasons.ts';

/** The repository root: entry paths are relative to it and it holds package-lock.json. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The handler entry files the stack deploys; the local stack runs the same modules. */
export const DEFAULT_ENTRIES = {
  api: 'functions/api/lambda.ts',
  balancer: 'functions/balancer/handler.ts',
  reaper: 'functions/reaper/handler.ts',
} as const;

export type Entries = { [K in keyof typeof DEFAULT_ENTRIES]: string };

// Bundles are ESM; CommonJS dependencies (pino, the SDK) still call require() for built-ins.
const ESM_REQUIRE_BANNER =
  "import{createRequire as __seesawCreateRequire}from'node:module';const require=__seesawCreateRequire(import.meta.url);";

/** What every construct that owns a Seesaw function is given: the function's code and the cluster's storage. */
export interface ClusterFunctionProps {
  /** Entry file, absolute or relative to the repository root; must export `handler`. */
  entry: string;
  /** The function's config reads the table's and the bucket's names from its environment. */
  table: dynamodb.ITable;
  bucket: s3.IBucket;
}

export interface SeesawFunctionProps {
  /** Powertools service name: the `service` of its log lines and metrics. */
  service: Service;
  /** Its own environment, after the storage names. */
  environment: Record<string, string>;
  description: string;
  memorySize: number;
  timeout: Duration;
  /** Its data access (data-access.ts), added to its role after the log and X-Ray statements. */
  grants: iam.PolicyStatement[];
  logRetention?: logs.RetentionDays;
  /** Node.js flags after `--enable-source-maps` in its NODE_OPTIONS (e.g. the balancer's heap sizes). */
  nodeOptions?: string[];
}

/** A scheduled function's timeout: at most `maxSeconds`, and never longer than its period. */
export const timeoutWithin = (rate: Duration, maxSeconds: number) =>
  Duration.seconds(Math.min(maxSeconds, rate.toSeconds()));

/** Fails the synth with a clear message instead of letting NodejsFunction fall back to Docker. */
export function assertLocalEsbuild(): void {
  try {
    createRequire(path.join(PROJECT_ROOT, 'package.json')).resolve('esbuild');
  } catch {
    throw new Error(
      'esbuild is not installed in this checkout; Seesaw bundles functions with the local esbuild ' +
        '(never Docker). Run `npm install` first.',
    );
  }
}

export function resolveEntry(entry: string): string {
  return path.isAbsolute(entry) ? entry : path.join(PROJECT_ROOT, entry);
}

export class SeesawFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, cluster: ClusterFunctionProps, props: SeesawFunctionProps) {
    super(scope, id);
    assertLocalEsbuild();

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description} (Seesaw): writes its own logs; data access added per function`,
    });
    // In place of AWSLambdaBasicExecutionRole, which may write to any log group in the account.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: resolveEntry(cluster.entry),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      // Stack traces point into the TypeScript sources (maps ship without sources to stay small).
      environment: {
        SEESAW_TABLE: cluster.table.tableName,
        SEESAW_BUCKET: cluster.bucket.bucketName,
        ...props.environment,
        NODE_OPTIONS: ['--enable-source-maps', ...(props.nodeOptions ?? [])].join(' '),
        POWERTOOLS_SERVICE_NAME: props.service,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      },
      tracing: lambda.Tracing.ACTIVE,
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        // Bundle the pinned AWS SDK rather than the runtime's copy, so the deployed handler runs the
        // very SDK version the tests ran against.
        bundleAwsSDK: true,
        externalModules: [],
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        forceDockerBundling: false,
        logLevel: LogLevel.ERROR,
      },
    });
    this.role.node.addDependency(this.logGroup);
    for (const grant of props.grants) this.role.addToPrincipalPolicy(grant);

    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray (tracing: ACTIVE) adds xray:PutTraceSegments and xray:PutTelemetryRecords, which support ' +
        'no resource-level permissions and must be granted on *.',
    );
    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'Pinned to Node.js 22 on purpose: the handlers are tested on it, and a runtime upgrade is a ' +
        'deliberate change, not something a synth should pick up silently.',
    );
  }
}
