// Operators sign in to the dashboard through a Cognito user pool: no self sign-up (an
// administrator invites people), the hosted sign-in page, and one public app client that uses the
// authorization-code flow with PKCE (the page holds no secret). The API checks the tokens with a
// JWT authorizer on the /ui/v1 routes (control-plane-api.ts).
import { Aws, Duration, Fn, Stack } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import { Construct } from 'constructs';
import { acknowledge } from './nag-reasons.ts';

export interface OperatorSignInProps {
  /** Where the dashboard lives (the API's base URL, ending in `/`): the only redirect target. */
  dashboardUrl: string;
  /** Invited as the first operator: Cognito mails a temporary password. */
  adminEmail?: string;
}

/** What the dashboard needs to start a sign-in; served to it at /dashboard/config.json. */
export interface SignInEndpoints {
  issuer: string;
  clientId: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  logoutEndpoint: string;
}

export class OperatorSignIn extends Construct {
  readonly userPool: cognito.UserPool;
  readonly client: cognito.UserPoolClient;
  readonly domain: cognito.UserPoolDomain;
  readonly admin?: cognito.CfnUserPoolUser;

  constructor(scope: Construct, id: string, props: OperatorSignInProps) {
    super(scope, id);
    this.userPool = new cognito.UserPool(this, 'Operators', {
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: false } },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      passwordPolicy: {
        minLength: 12,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      userInvitation: {
        emailSubject: 'Your Seesaw dashboard account',
        emailBody:
          `Sign in to the Seesaw dashboard at ${props.dashboardUrl} as {username} with the ` +
          'temporary password {####}. You will choose your own password on first sign-in.',
      },
    });
    // Hosted sign-in pages under <prefix>.auth.<region>.amazoncognito.com; the prefix must be
    // unique in the region, so it carries the account id.
    this.domain = this.userPool.addDomain('Domain', {
      cognitoDomain: {
        domainPrefix: Fn.join('-', [Stack.of(this).stackName.toLowerCase(), Aws.ACCOUNT_ID]),
      },
    });
    this.client = this.userPool.addClient('Dashboard', {
      generateSecret: false,
      authFlows: {},
      preventUserExistenceErrors: true,
      supportedIdentityProviders: [cognito.UserPoolClientIdentityProvider.COGNITO],
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
        callbackUrls: [props.dashboardUrl],
        logoutUrls: [props.dashboardUrl],
      },
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.hours(12),
      enableTokenRevocation: true,
    });

    if (props.adminEmail) {
      this.admin = new cognito.CfnUserPoolUser(this, 'FirstOperator', {
        userPoolId: this.userPool.userPoolId,
        username: props.adminEmail,
        userAttributes: [
          { name: 'email', value: props.adminEmail },
          { name: 'email_verified', value: 'true' },
        ],
        desiredDeliveryMediums: ['EMAIL'],
      });
    }

    acknowledge(
      this.userPool,
      'AwsSolutions-COG2',
      'MFA is optional: operators may add a TOTP app; requiring it would block the first sign-in of ' +
        'an invited operator until they enrol. Enable REQUIRED for production accounts.',
    );
    acknowledge(
      this.userPool,
      'AwsSolutions-COG3',
      'Threat protection (advanced security) needs the Plus feature plan, billed per active user; ' +
        'the pool has invited operators only and no self sign-up.',
    );
    acknowledge(
      this.userPool,
      'AwsSolutions-COG8',
      'The Essentials plan: the Plus plan (threat protection, compromised-password checks) is billed ' +
        'per monthly active user and is a choice for the account owner, not a default.',
    );
  }

  get endpoints(): SignInEndpoints {
    const region = Stack.of(this).region;
    const base = this.domain.baseUrl();
    return {
      issuer: `https://cognito-idp.${region}.amazonaws.com/${this.userPool.userPoolId}`,
      clientId: this.client.userPoolClientId,
      authorizationEndpoint: `${base}/oauth2/authorize`,
      tokenEndpoint: `${base}/oauth2/token`,
      logoutEndpoint: `${base}/logout`,
    };
  }
}
