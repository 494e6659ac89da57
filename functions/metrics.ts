// What the scheduled functions measure, as Powertools metrics (namespace Seesaw, one EMF line per
// invocation, flushed by `instrumented`). The stack's StuckMigrations alarm watches one of them:
// test/cdk/metrics.test.ts holds the two together.
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RunRecord } from '../shared/storage/runs.ts';
import type { ReaperReport } from './reaper/reaper.ts';

/** A balancer run: Exchanges, ImbalanceCV and OrdersLost, with the run, shard and round as metadata. */
export function recordRunMetrics(metrics: Metrics, record: RunRecord): void {
  metrics.setTimestamp(record.at);
  metrics.addMetric('Exchanges', MetricUnit.Count, record.exchanges);
  metrics.addMetric('ImbalanceCV', MetricUnit.NoUnit, record.before.cv);
  metrics.addMetric('OrdersLost', MetricUnit.Count, record.ordersLost);
  metrics.addMetadata('run', record.id);
  metrics.addMetadata('shard', String(record.shard));
  metrics.addMetadata('round', String(record.round));
}

/** A reaper run: StuckMigrations (orders found past their deadline), RestartedVms and DeadNodes. */
export function recordReaperMetrics(metrics: Metrics, report: ReaperReport): void {
  metrics.setTimestamp(report.at);
  metrics.addMetric('StuckMigrations', MetricUnit.Count, report.stuckMigrations);
  metrics.addMetric('RestartedVms', MetricUnit.Count, report.restarted.length);
  metrics.addMetric('DeadNodes', MetricUnit.Count, report.deadNodes.length);
}
