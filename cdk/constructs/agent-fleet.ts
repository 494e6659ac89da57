// The optional agent fleet (`-c agents=N`): N Graviton hosts in an Auto Scaling group, each running
// one node agent under systemd. No SSH: no key pair and no inbound rule at all; operators reach a
// host through SSM Session Manager. IMDSv2 only. The node id is the instance id, read from IMDSv2.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { AssetHashType, DockerImage, Duration } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { DEFAULT_ENV_FILE, UNIT_NAME } from '../../bin/systemd.ts';
import { acknowledge } from './nag-reasons.ts';
import { PROJECT_ROOT } from './seesaw-function.ts';

/** The systemd unit `seesaw agent install --systemd` writes; the user data starts it. */
export const AGENT_UNIT = UNIT_NAME;
/** Where the bundle is unpacked on a host, and the user the unit runs as. */
export const AGENT_HOME = '/opt/seesaw';
export const AGENT_USER = 'seesaw';
/** The environment file the unit reads (the installer's default): node id, table, bucket, region. */
export const AGENT_ENV_FILE = DEFAULT_ENV_FILE;
/** The bundle's entry on a host, and the node binary Amazon Linux 2023's nodejs22 package installs. */
export const AGENT_ENTRY = `${AGENT_HOME}/seesaw.js`;
const NODE = '/usr/bin/node-22';

/**
 * The sources the agent bundle is built from (bin/build.js bundles the CLI, which is the agent):
 * the asset's hash follows them, so a change to the agent ships a new bundle.
 */
export const AGENT_BUNDLE_SOURCES = ['bin', 'node-agent', 'shared', 'package.json', 'package-lock.json'];

/** Builds the esbuild bundle (dist/ of `npm run build`: seesaw.js, its chunks, precompiled guests) into `outdir`. */
export function buildAgentBundle(outdir: string): void {
  const build = path.join(PROJECT_ROOT, 'bin', 'build.js');
  execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { buildCli } = await import(${JSON.stringify(build)}); await buildCli({ outdir: process.argv[1], quiet: true });`,
      outdir,
    ],
    { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

export interface AgentFleetProps {
  count: number;
  instanceType: string;
  /** The agent's managed policy (agent-policy.ts). */
  agentPolicy: iam.IManagedPolicy;
  tableName: string;
  bucketName: string;
  /** Scaling failures (an instance that could not launch) go here. */
  alarmTopic: sns.ITopic;
}

export class AgentFleet extends Construct {
  readonly vpc: ec2.Vpc;
  readonly securityGroup: ec2.SecurityGroup;
  readonly role: iam.Role;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly group: autoscaling.AutoScalingGroup;
  readonly bundle: s3assets.Asset;

  constructor(scope: Construct, id: string, props: AgentFleetProps) {
    super(scope, id);

    // Public subnets without NAT gateways (those cost more than the hosts): each host has a public
    // address for outbound HTTPS only; DynamoDB and S3 traffic stays on gateway endpoints.
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'agents', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: {
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'Hosts', {
      vpc: this.vpc,
      description: 'Seesaw agent hosts: no inbound at all (SSM Session Manager, no SSH); HTTPS out',
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(
      ec2.Peer.anyIpv4(),
      ec2.Port.tcp(443),
      'AWS APIs (DynamoDB, S3, SSM), packages',
    );

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Seesaw agent host: the agent policy, Session Manager, and the agent bundle',
      managedPolicies: [
        props.agentPolicy,
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore'),
      ],
    });

    // The agent as one self-contained bundle (node and this directory are all a host needs),
    // built by the local esbuild at synth time, never in Docker.
    this.bundle = new s3assets.Asset(this, 'AgentBundle', {
      path: PROJECT_ROOT,
      exclude: ['*', '.*', ...AGENT_BUNDLE_SOURCES.flatMap((p) => [`!${p}`, `!${p}/**`]), '**/node_modules'],
      assetHashType: AssetHashType.SOURCE,
      bundling: {
        image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:22-slim'),
        local: {
          tryBundle(outputDir) {
            buildAgentBundle(outputDir);
            return true;
          },
        },
      },
    });
    // The one object, not the bootstrap bucket (grantRead would give GetObject* on all of it).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FetchAgentBundle',
        actions: ['s3:GetObject'],
        resources: [this.bundle.bucket.arnForObjects(this.bundle.s3ObjectKey)],
      }),
    );

    const userData = ec2.UserData.forLinux();
    userData.addCommands('set -euo pipefail');
    const zip = userData.addS3DownloadCommand({
      bucket: this.bundle.bucket,
      bucketKey: this.bundle.s3ObjectKey,
      localFile: '/tmp/seesaw-agent.zip',
    });
    userData.addCommands(
      ...agentHostScript({ zip, tableName: props.tableName, bucketName: props.bucketName }),
    );

    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
      instanceType: new ec2.InstanceType(props.instanceType),
      role: this.role,
      securityGroup: this.securityGroup,
      userData,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(16, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }),
        },
      ],
    });

    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      launchTemplate: this.launchTemplate,
      minCapacity: props.count,
      maxCapacity: props.count,
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
      notifications: [
        {
          topic: props.alarmTopic,
          scalingEvents: autoscaling.ScalingEvents.ERRORS,
        },
      ],
    });

    acknowledge(
      this.role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'The AWS-managed Session Manager policy is the supported way to reach hosts without SSH.',
    );
    acknowledge(
      this.vpc,
      'AwsSolutions-VPC7',
      'The VPC holds only the agent hosts, which accept no inbound traffic; flow logs would cost more ' +
        'than they tell. Add them (vpc.addFlowLog) for an account that audits network traffic.',
    );
    acknowledge(
      this.securityGroup,
      'AwsSolutions-EC23',
      'No inbound rule exists; the only rule is outbound HTTPS.',
    );
    acknowledge(
      this.group,
      'AwsSolutions-AS3',
      'Launch and terminate errors notify the alarm topic; routine launches do not page anyone.',
    );
    acknowledge(
      this.launchTemplate,
      'AwsSolutions-EC28',
      'Basic (5-minute) monitoring suffices: the agent reports its own load every few seconds.',
    );
  }
}

/** The boot script after the bundle is downloaded: Node.js, the bundle, the unit, its environment. */
export function agentHostScript(options: { zip: string; tableName: string; bucketName: string }): string[] {
  return [
    // The node id is the instance id, from IMDSv2 (a session token first; v1 is disabled).
    'IMDS_TOKEN=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H "X-aws-ec2-metadata-token-ttl-seconds: 300")',
    'imds() { curl -sf -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "http://169.254.169.254/latest/$1"; }',
    'INSTANCE_ID=$(imds meta-data/instance-id)',
    'REGION=$(imds meta-data/placement/region)',
    'dnf install -y nodejs22 unzip',
    `id ${AGENT_USER} >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin ${AGENT_USER}`,
    // The bundle is self-contained: no npm install on the host.
    `rm -rf ${AGENT_HOME} && mkdir -p ${AGENT_HOME}`,
    `unzip -q ${options.zip} -d ${AGENT_HOME}`,
    `mkdir -p ${path.posix.dirname(AGENT_ENV_FILE)}`,
    `cat > ${AGENT_ENV_FILE} <<EOF`,
    'SEESAW_NODE=$INSTANCE_ID',
    `SEESAW_TABLE=${options.tableName}`,
    `SEESAW_BUCKET=${options.bucketName}`,
    'AWS_REGION=$REGION',
    // One core serves 1,000,000 work units a second (the kernel's UNITS_PER_CORE).
    'SEESAW_CAPACITY=$(( $(nproc) * 1000000 ))',
    'EOF',
    // The unit runs the bundle as the seesaw user and reads the environment file above.
    `${NODE} ${AGENT_ENTRY} agent install --systemd --user ${AGENT_USER} --entry ${AGENT_ENTRY} --node-path ${NODE} --environment-file ${AGENT_ENV_FILE}`,
    'systemctl daemon-reload',
    `systemctl enable --now ${AGENT_UNIT}`,
  ];
}
