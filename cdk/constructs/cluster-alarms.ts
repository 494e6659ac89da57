// Alarms that page someone: the balancer failing, the reaper failing, migrations that stay stuck
// past their deadline, and the API answering 5xx. All notify one SNS topic.
import { Duration } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, SERVICES } from '../../functions/services.ts';
import { acknowledge } from './nag-reasons.ts';

/**
 * The metric the reaper emits once per run through Powertools Metrics (functions/metrics.ts,
 * `recordReaperMetrics`): namespace `Seesaw`, metric `StuckMigrations` (Count) = orders it found
 * past their deadline in that run. Powertools files every metric under the `service` dimension, so
 * the alarm watches that dimension set (one Seesaw stack per account and region keeps it
 * unambiguous); test/cdk/metrics.test.ts holds the two together.
 */
export const STUCK_MIGRATIONS_METRIC = {
  namespace: METRICS_NAMESPACE,
  metricName: 'StuckMigrations',
  dimensions: { service: SERVICES.reaper } as Record<string, string>,
} as const;

export interface ClusterAlarmsProps {
  cluster: string;
  balancer: lambda.IFunction;
  reaper: lambda.IFunction;
  api: apigwv2.IHttpApi;
  /** How often the reaper runs; the stuck-migration alarm's period is at least this. */
  reaperRate: Duration;
  email?: string;
}

const PERIOD = Duration.minutes(5);

export class ClusterAlarms extends Construct {
  readonly topic: sns.Topic;
  readonly balancerErrors: cloudwatch.Alarm;
  readonly reaperErrors: cloudwatch.Alarm;
  readonly stuckMigrations: cloudwatch.Alarm;
  readonly apiServerErrors: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: ClusterAlarmsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `Seesaw alarms (${props.cluster})`,
      enforceSSL: true,
    });
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    acknowledge(
      this.topic,
      'AwsSolutions-SNS2',
      'Alarm notifications carry no cluster data; CloudWatch cannot publish to a topic under the ' +
        'AWS-managed SNS key, and a customer key would cost more than the rest of a small cluster.',
    );

    this.balancerErrors = functionErrorsAlarm(
      this,
      'BalancerErrors',
      props.balancer,
      'Balancer rounds are failing (lost races are not errors; these are crashes or timeouts).',
    );
    this.reaperErrors = functionErrorsAlarm(
      this,
      'ReaperErrors',
      props.reaper,
      'Reaper runs are failing: dead nodes\u2019 VMs are not being restarted.',
    );
    // The reaper resolves a stuck migration when it sees one; seeing some in three periods running
    // means they are not being resolved.
    this.stuckMigrations = new cloudwatch.Alarm(this, 'StuckMigrations', {
      alarmDescription:
        'Migrations stay past their deadline across reaper runs (the reaper cannot resolve them).',
      metric: new cloudwatch.Metric({
        namespace: STUCK_MIGRATIONS_METRIC.namespace,
        metricName: STUCK_MIGRATIONS_METRIC.metricName,
        dimensionsMap: STUCK_MIGRATIONS_METRIC.dimensions,
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.seconds(Math.max(PERIOD.toSeconds(), props.reaperRate.toSeconds())),
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.apiServerErrors = new cloudwatch.Alarm(this, 'ApiServerErrors', {
      alarmDescription: 'The HTTP API answers 5xx.',
      metric: props.api.metricServerError({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
      threshold: 5,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const notify = new actions.SnsAction(this.topic);
    for (const alarm of [
      this.balancerErrors,
      this.reaperErrors,
      this.stuckMigrations,
      this.apiServerErrors,
    ]) {
      alarm.addAlarmAction(notify);
      alarm.addOkAction(notify);
    }
  }
}

/** Two of three periods with errors: one transient failure does not page, a failing run does. */
function functionErrorsAlarm(
  scope: Construct,
  id: string,
  fn: lambda.IFunction,
  alarmDescription: string,
): cloudwatch.Alarm {
  return new cloudwatch.Alarm(scope, id, {
    alarmDescription,
    metric: fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM }),
    threshold: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
}
