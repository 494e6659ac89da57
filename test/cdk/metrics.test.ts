// The contract between the reaper's Powertools metric and the alarm that watches it: if either
// side changes the namespace, the metric name or its dimensions, the alarm would silently never fire.
import { describe, expect, it } from 'vitest';
import { STUCK_MIGRATIONS_METRIC } from '../../cdk/constructs/cluster-alarms.ts';
import { recordReaperMetrics } from '../../functions/metrics.ts';
import { observability, SERVICES } from '../../functions/observability.ts';
import type { ReaperReport } from '../../functions/reaper/reaper.ts';
import { captureEmf } from '../support/emf.ts';

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

/** What one reaper invocation prints, through the same Powertools setup as the Lambda entry. */
function emitted(report: ReaperReport) {
  const { metrics } = observability(SERVICES.reaper);
  recordReaperMetrics(metrics, report);
  const lines = captureEmf(() => metrics.publishStoredMetrics());
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('the stuck-migration metric', () => {
  it('is emitted by the reaper under the namespace, name and dimensions the alarm watches', () => {
    const line = emitted(aReport(3));
    const directive = line._aws.CloudWatchMetrics.find((d) =>
      d.Metrics.some((m) => m.Name === STUCK_MIGRATIONS_METRIC.metricName),
    );
    expect(directive?.Namespace).toBe(STUCK_MIGRATIONS_METRIC.namespace);
    // CloudWatch files the value under every dimension set listed; the alarm's must be one of them.
    expect(directive?.Dimensions).toContainEqual(Object.keys(STUCK_MIGRATIONS_METRIC.dimensions));
    for (const [name, value] of Object.entries(STUCK_MIGRATIONS_METRIC.dimensions))
      expect(line[name]).toBe(value);
  });

  it('carries the count of orders found past their deadline in that run, at the run’s time', () => {
    expect(emitted(aReport(3))[STUCK_MIGRATIONS_METRIC.metricName]).toBe(3);
    expect(emitted(aReport(0))[STUCK_MIGRATIONS_METRIC.metricName]).toBe(0);
    expect(emitted(aReport(1))._aws.Timestamp).toBe(1_700_000_000_000);
  });

  it('comes with the run’s restarts and dead nodes as Count metrics', () => {
    const line = emitted({
      ...aReport(0),
      deadNodes: ['n1'],
      restarted: [{ vm: 'v', from: 'n1', to: 'n2' }] as never,
    });
    expect(line).toMatchObject({ RestartedVms: 1, DeadNodes: 1 });
    expect(line._aws.CloudWatchMetrics[0]?.Metrics).toEqual(
      expect.arrayContaining([
        { Name: 'RestartedVms', Unit: 'Count' },
        { Name: 'DeadNodes', Unit: 'Count' },
      ]),
    );
  });
});
