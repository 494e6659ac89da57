// An EventBridge Scheduler target that invokes one function with a fixed JSON input, through a
// role that may invoke exactly that function (the stock LambdaInvoke also grants every version).

import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';

/** One role per invoked function, shared by all of its schedules. */
export class SchedulerInvokeRole extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, fn: lambda.IFunction) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      description: 'EventBridge Scheduler: invoke one Seesaw function',
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeOneFunction',
        actions: ['lambda:InvokeFunction'],
        resources: [fn.functionArn],
      }),
    );
  }
}

export class InvokeWithInput implements scheduler.IScheduleTarget {
  constructor(
    private readonly fn: lambda.IFunction,
    private readonly role: iam.IRole,
    private readonly input: Record<string, unknown>,
  ) {}

  bind(_schedule: scheduler.ISchedule): scheduler.ScheduleTargetConfig {
    return {
      arn: this.fn.functionArn,
      role: this.role,
      input: scheduler.ScheduleTargetInput.fromObject(this.input),
      // The next round comes on schedule; retrying a late round would only overlap it.
      retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
    };
  }
}
