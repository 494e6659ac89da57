// The contract between the reaper's EMF line and the alarm that watches it: if either side
// changes the namespace, the metric name or its dimensions, the alarm would silently never fire.
import { describe, expect, it } from 'vitest';
import { STUCK_MIGRATIONS_METRIC } from '../../cdk/constructs/cluster-alarms.ts';
import { emfLine, type ReaperReport } from '../../functions/reaper/reaper.ts';

const aReport = (stuckMigrations: number): ReaperReport => ({
  at: 1_700_000_000_000,
  deadNodes: [],
  restarted: [],
  suspended: [],
  deleted: [],
  aborted: [],
  settled: [],
  stuckMigrations,
  homeless: [],
  raced: 0,
});

interface Emf {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [member: string]: unknown;
}

describe('the stuck-migration metric', () => {
  it('is emitted by the reaper under the namespace, name and dimensions the alarm watches', () => {
    const line = JSON.parse(emfLine(aReport(3))) as Emf;
    const directive = line._aws.CloudWatchMetrics.find((d) =>
      d.Metrics.some((m) => m.Name === STUCK_MIGRATIONS_METRIC.metricName),
    );
    expect(directive?.Namespace).toBe(STUCK_MIGRATIONS_METRIC.namespace);
    // CloudWatch files the value under every dimension set listed; the alarm's must be one of them.
    expect(directive?.Dimensions).toContainEqual(Object.keys(STUCK_MIGRATIONS_METRIC.dimensions));
    for (const [name, value] of Object.entries(STUCK_MIGRATIONS_METRIC.dimensions))
      expect(line[name]).toBe(value);
  });

  it('carries the count of orders found past their deadline in that run', () => {
    expect((JSON.parse(emfLine(aReport(3))) as Emf)[STUCK_MIGRATIONS_METRIC.metricName]).toBe(3);
    expect((JSON.parse(emfLine(aReport(0))) as Emf)[STUCK_MIGRATIONS_METRIC.metricName]).toBe(0);
  });
});
