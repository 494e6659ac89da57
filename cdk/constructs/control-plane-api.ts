// The Hono API app on Lambda behind an HTTP API. The gateway authorises every /v1 call with IAM
// (SigV4, the CLI) and every /ui/v1 call with a JWT from the operators' user pool (the dashboard);
// the app trusts it (SEESAW_AUTH=gateway) and serves both prefixes. /healthz stays open.
import { Duration, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpUserPoolAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { SERVICES } from '../../functions/services.ts';
import { BUCKET_PREFIXES } from './cluster-storage.ts';
import {
  itemStatement,
  listStatement,
  objectStatement,
  queryStatement,
  removeVmImages,
} from './data-access.ts';
import { acknowledge, acknowledgeObjectPrefixes, refToken } from './nag-reasons.ts';
import type { OperatorSignIn } from './operator-sign-in.ts';
import { type ClusterFunctionProps, SeesawFunction } from './seesaw-function.ts';

export interface ControlPlaneApiProps extends ClusterFunctionProps {
  /** Requests per second the stage admits (steady state). */
  rateLimit?: number;
  burstLimit?: number;
}

export class ControlPlaneApi extends Construct {
  readonly handler: SeesawFunction;
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  /** Attach to the people and tools that call the API (e.g. the CLI): execute-api:Invoke on it. */
  readonly invokePolicy: iam.ManagedPolicy;
  private readonly app: HttpLambdaIntegration;

  constructor(scope: Construct, id: string, props: ControlPlaneApiProps) {
    super(scope, id);
    const { table, bucket } = props;

    this.handler = new SeesawFunction(this, 'Handler', props, {
      service: SERVICES.api,
      environment: { SEESAW_AUTH: 'gateway' },
      description: 'Seesaw HTTP API (VM lifecycle, nodes, balancing config)',
      memorySize: 1024,
      timeout: Duration.seconds(29),
      grants: [
        // VMs, nodes, config, modules and idempotency records; removing a VM or a failed module
        // registration deletes its item. Listing goes through the byKind index; a balancer run the API
        // starts (`seesaw balance`) with several shards reads its shard's nodes through byBucket.
        itemStatement('ReadWriteItems', table, ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem']),
        queryStatement('ListByKind', table, ['byKind']),
        queryStatement('ListShardNodes', table, ['byBucket']),
        objectStatement('StoreModules', bucket, ['PutObject'], [BUCKET_PREFIXES.modules]),
        // POST /v1/images stores an image's files; DELETE /v1/images/{name} (or a failed upload) removes them.
        objectStatement(
          'StoreQemuImages',
          bucket,
          ['PutObject', 'DeleteObject'],
          [BUCKET_PREFIXES.qemuImages],
        ),
        listStatement('FindQemuImageFiles', bucket, [BUCKET_PREFIXES.qemuImages]),
        // DELETE /v1/vms/{id} removes the VM's images once it has stopped.
        ...removeVmImages(bucket),
      ],
    });
    acknowledgeObjectPrefixes(
      this.handler.role,
      bucket,
      [BUCKET_PREFIXES.modules, BUCKET_PREFIXES.images, BUCKET_PREFIXES.qemuImages],
      'the API stores uploaded modules and qemu images, and removes the images of deleted VMs',
    );

    const app = new HttpLambdaIntegration('App', this.handler.function);
    this.app = app;
    this.httpApi = new apigwv2.HttpApi(this, 'HttpApi', {
      description: 'Seesaw control plane',
      createDefaultStage: false,
      defaultAuthorizer: new HttpIamAuthorizer(),
      defaultIntegration: app,
    });
    // The health check and the dashboard's static page are public; the page's data calls go to /v1.
    for (const path of ['/healthz', '/', '/dashboard/{file}']) {
      this.httpApi.addRoutes({
        path,
        methods: [apigwv2.HttpMethod.GET],
        integration: app,
        authorizer: new apigwv2.HttpNoneAuthorizer(),
      });
    }

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.ONE_MONTH });
    this.stage = new apigwv2.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 100, burstLimit: props.burstLimit ?? 200 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(accessLogs),
        format: apigw.AccessLogFormat.jsonWithStandardFields(),
      },
    });

    this.invokePolicy = new iam.ManagedPolicy(this, 'InvokePolicy', {
      description: 'Call the Seesaw HTTP API (SigV4-signed requests)',
      statements: [
        new iam.PolicyStatement({
          sid: 'InvokeSeesawApi',
          actions: ['execute-api:Invoke'],
          resources: [
            Stack.of(this).formatArn({
              service: 'execute-api',
              resource: this.httpApi.apiId,
              resourceName: '*',
            }),
          ],
        }),
      ],
    });

    acknowledge(
      this.invokePolicy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:${refToken(this.httpApi)}/*]`,
      'Grants every route and method of this one API (apiId/*): the API is the unit operators call.',
    );
    acknowledge(
      this.httpApi,
      'AwsSolutions-APIG4',
      'Only GET /healthz (uptime checks) and the static dashboard page (GET /, GET /dashboard/{file}) are open; every /v1 route needs IAM (SigV4) and every /ui/v1 route a JWT from the user pool.',
    );
  }

  /**
   * The dashboard's door: /ui/v1/* mirrors /v1/* on the same function, authorised by a JWT from
   * the operators' user pool (issuer, audience = the dashboard client, expiry). The function
   * learns the sign-in endpoints to hand the page.
   */
  addOperatorRoutes(signIn: OperatorSignIn): void {
    this.httpApi.addRoutes({
      path: '/ui/v1/{proxy+}',
      methods: [apigwv2.HttpMethod.ANY],
      integration: this.app,
      authorizer: new HttpUserPoolAuthorizer('Operators', signIn.userPool, {
        userPoolClients: [signIn.client],
      }),
    });
    const endpoints = signIn.endpoints;
    this.handler.function.addEnvironment('SEESAW_OIDC_ISSUER', endpoints.issuer);
    this.handler.function.addEnvironment('SEESAW_OIDC_CLIENT_ID', endpoints.clientId);
    this.handler.function.addEnvironment('SEESAW_OIDC_AUTHORIZE_URL', endpoints.authorizationEndpoint);
    this.handler.function.addEnvironment('SEESAW_OIDC_TOKEN_URL', endpoints.tokenEndpoint);
    this.handler.function.addEnvironment('SEESAW_OIDC_LOGOUT_URL', endpoints.logoutEndpoint);
  }

  get url(): string {
    return this.stage.url;
  }
}
