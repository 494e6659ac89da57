// The stack as an operator deploys it for daily use: `-c adminEmail=… -c agents=N`. The dashboard's
// sign-in (user pool, JWT routes), IAM on the CLI's routes, and the agent fleet; cdk-nag over all.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { UNIT_NAME } from '../../bin/systemd.ts';
import { AGENT_ENTRY, AGENT_ENV_FILE, AGENT_UNIT } from '../../cdk/constructs/agent-fleet.ts';
import { nagFindings, SYNTH_TIMEOUT_MS, type Synthesized, synthSeesaw } from './support.ts';

let s: Synthesized;
beforeAll(() => {
  s = synthSeesaw({ adminEmail: 'first@example.com', agents: '3', agentInstanceType: 't4g.medium' });
}, SYNTH_TIMEOUT_MS);

type Resource = { Type: string; Properties: Record<string, unknown>; [k: string]: unknown };
const resources = (type: string) => Object.entries(s.template.findResources(type)) as [string, Resource][];
const only = (type: string) => {
  const all = resources(type);
  expect(all, type).toHaveLength(1);
  return all[0]![1].Properties;
};
const id = (construct: { node: { defaultChild?: unknown } }) =>
  s.stack.getLogicalId(construct.node.defaultChild as never);
const fleet = () => {
  if (!s.stack.fleet) throw new Error('no fleet in the stack');
  return s.stack.fleet;
};

describe('the operators’ user pool', () => {
  it('lets nobody sign themselves up', () => {
    expect(only('AWS::Cognito::UserPool')).toMatchObject({
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
    });
  });

  it('asks for long passwords of all four character classes', () => {
    expect(only('AWS::Cognito::UserPool').Policies).toMatchObject({
      PasswordPolicy: {
        MinimumLength: 12,
        RequireLowercase: true,
        RequireUppercase: true,
        RequireNumbers: true,
        RequireSymbols: true,
      },
    });
  });

  it('goes with the stack (operator accounts only), freeing its sign-in domain for the next deploy', () => {
    s.template.hasResource('AWS::Cognito::UserPool', { DeletionPolicy: 'Delete' });
  });

  it('invites the first operator from -c adminEmail by e-mail', () => {
    expect(only('AWS::Cognito::UserPoolUser')).toMatchObject({
      Username: 'first@example.com',
      DesiredDeliveryMediums: ['EMAIL'],
      UserPoolId: { Ref: id(s.stack.signIn.userPool) },
    });
  });

  it('has one public client for the dashboard: code flow only, no secret, back to the dashboard URL', () => {
    const client = only('AWS::Cognito::UserPoolClient');
    expect(client).toMatchObject({ AllowedOAuthFlows: ['code'], GenerateSecret: false });
    expect(client.AllowedOAuthScopes).toContain('openid');
    expect(JSON.stringify(client.CallbackURLs)).toContain(id(s.stack.api.httpApi));
    expect(client.ExplicitAuthFlows ?? []).not.toContain('ALLOW_USER_PASSWORD_AUTH');
  });

  it('gets a hosted sign-in domain, and the API function is told the endpoints', () => {
    only('AWS::Cognito::UserPoolDomain');
    const env = (
      s.template.toJSON().Resources[id(s.stack.api.handler.function)].Properties as {
        Environment: { Variables: Record<string, unknown> };
      }
    ).Environment.Variables;
    expect(env.SEESAW_OIDC_CLIENT_ID).toEqual({ Ref: id(s.stack.signIn.client) });
    for (const name of ['SEESAW_OIDC_ISSUER', 'SEESAW_OIDC_AUTHORIZE_URL', 'SEESAW_OIDC_TOKEN_URL'])
      expect(env[name], name).toBeDefined();
  });
});

describe('the API routes', () => {
  const routes = () =>
    Object.fromEntries(
      resources('AWS::ApiGatewayV2::Route').map(([, r]) => [r.Properties.RouteKey, r.Properties]),
    );

  it('keep IAM (SigV4) on /v1 for the CLI: the default route', () => {
    expect(routes().$default).toMatchObject({ AuthorizationType: 'AWS_IAM' });
  });

  it('mirror /v1 under /ui/v1 for the dashboard, behind a JWT authorizer of the user pool', () => {
    const ui = routes()['ANY /ui/v1/{proxy+}'];
    expect(ui).toMatchObject({ AuthorizationType: 'JWT' });
    const authorizer = only('AWS::ApiGatewayV2::Authorizer');
    expect(ui?.AuthorizerId).toEqual({ Ref: resources('AWS::ApiGatewayV2::Authorizer')[0]![0] });
    expect(authorizer).toMatchObject({
      AuthorizerType: 'JWT',
      IdentitySource: ['$request.header.Authorization'],
      JwtConfiguration: { Audience: [{ Ref: id(s.stack.signIn.client) }] },
    });
    expect(JSON.stringify((authorizer.JwtConfiguration as { Issuer: unknown }).Issuer)).toContain(
      id(s.stack.signIn.userPool),
    );
  });

  it('open nothing else: only the health check and the static page need no credential', () => {
    const open = Object.entries(routes())
      .filter(([, r]) => (r as { AuthorizationType?: string }).AuthorizationType === 'NONE')
      .map(([key]) => key)
      .sort();
    expect(open).toEqual(['GET /', 'GET /dashboard/{file}', 'GET /healthz']);
  });
});

describe('the agent fleet (-c agents=3)', () => {
  const template = () => only('AWS::EC2::LaunchTemplate').LaunchTemplateData as Record<string, unknown>;

  it('keeps exactly the requested number of hosts of the requested type', () => {
    expect(only('AWS::AutoScaling::AutoScalingGroup')).toMatchObject({ MinSize: '3', MaxSize: '3' });
    expect(template().InstanceType).toBe('t4g.medium');
  });

  it('requires IMDSv2 (session tokens) with a hop limit of one', () => {
    expect(template().MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  it('has no SSH: no key pair, and no inbound rule on any security group (port 22 or other)', () => {
    expect(template()).not.toHaveProperty('KeyName');
    for (const [, sg] of resources('AWS::EC2::SecurityGroup')) {
      expect(sg.Properties.SecurityGroupIngress ?? []).toEqual([]);
    }
    expect(resources('AWS::EC2::SecurityGroupIngress')).toEqual([]);
    expect(only('AWS::EC2::SecurityGroup').SecurityGroupEgress).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' }),
    ]);
  });

  it('starts hosts with an instance profile whose role has the agent policy and Session Manager', () => {
    const profile = only('AWS::IAM::InstanceProfile');
    expect(profile.Roles).toEqual([{ Ref: id(fleet().role) }]);
    expect(template().IamInstanceProfile).toEqual({
      Arn: { 'Fn::GetAtt': [resources('AWS::IAM::InstanceProfile')[0]![0], 'Arn'] },
    });
    const role = s.template.toJSON().Resources[id(fleet().role)].Properties as {
      ManagedPolicyArns: unknown[];
      AssumeRolePolicyDocument: { Statement: { Principal: unknown }[] };
    };
    expect(role.ManagedPolicyArns).toContainEqual({ Ref: id(s.stack.agentPolicy.policy) });
    expect(JSON.stringify(role.ManagedPolicyArns)).toContain('AmazonSSMManagedInstanceCore');
    expect(role.AssumeRolePolicyDocument.Statement[0]?.Principal).toEqual({ Service: 'ec2.amazonaws.com' });
  });

  it('lets a host fetch the agent bundle and nothing else of the asset bucket', () => {
    const statements = resources('AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: id(fleet().role) }]))
      .flatMap(([, p]) => (p.Properties.PolicyDocument as { Statement: { Action: unknown }[] }).Statement);
    expect(statements.map((st) => st.Action)).toEqual(['s3:GetObject']);
    expect(JSON.stringify(statements)).toContain(fleet().bundle.s3ObjectKey);
  });

  it('boots with user data that fetches the bundle, takes the node id from IMDSv2 and starts the unit', () => {
    const userData = JSON.stringify(template().UserData);
    expect(userData).toContain(fleet().bundle.s3ObjectKey);
    expect(userData).toContain('latest/api/token');
    expect(userData).toContain('SEESAW_NODE=$INSTANCE_ID');
    expect(userData).toContain('meta-data/instance-id');
    expect(userData).toContain(AGENT_ENV_FILE);
    expect(userData).toContain(`${AGENT_ENTRY} agent install --systemd --user seesaw --entry ${AGENT_ENTRY}`);
    expect(userData).toContain(`systemctl enable --now ${AGENT_UNIT}`);
    expect(userData).not.toContain('npm ');
    expect(userData).toContain(`SEESAW_TABLE=",{"Ref":"${id(s.stack.storage.table)}"}`);
    // Any failing step stops the script, from the download on.
    expect(userData.indexOf('set -euo pipefail')).toBeLessThan(userData.indexOf('aws s3 cp'));
  });

  it('ships the agent as the esbuild bundle: the entry, its chunks and the precompiled guests, no sources', () => {
    const files = readdirSync(path.join(s.outdir, `asset.${fleet().bundle.assetHash}`));
    expect(files).toContain('seesaw.js');
    expect(files.filter((f) => f.endsWith('.wasm')).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    for (const dir of ['bin', 'node-agent', 'shared', 'node_modules']) expect(files).not.toContain(dir);
  });

  it('starts the very unit `seesaw agent install --systemd` writes, reading the file the user data writes', () => {
    const unit = execFileSync(
      process.execPath,
      [
        'bin/seesaw.js',
        'agent',
        'install',
        '--systemd',
        '--print',
        '--user',
        'seesaw',
        '--entry',
        AGENT_ENTRY,
      ],
      { encoding: 'utf8' },
    );
    expect(unit).toContain(`EnvironmentFile=-${AGENT_ENV_FILE}`);
    expect(unit).toContain('User=seesaw');
    expect(AGENT_UNIT).toBe(UNIT_NAME);
  });

  it('encrypts the hosts’ disks', () => {
    expect(template().BlockDeviceMappings).toEqual([
      { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeSize: 16, VolumeType: 'gp3' } },
    ]);
  });
});

describe('cdk-nag on the full stack', () => {
  it('finds nothing unacknowledged with the user pool and the fleet in it', () => {
    expect(nagFindings(s).findings).toEqual([]);
  });
});
