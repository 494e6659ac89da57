// The local schedule: `seesaw up` runs the same runBalancer every interval, one run per shard per
// tick, as EventBridge Scheduler does on AWS. Ticks never overlap inside one loop; a slow tick delays
// the next one instead of piling runs up.
import { roundAt } from '../../shared/domain/shards.ts';
import { repeatEvery } from '../../shared/runtime/timer.ts';
import { getBalancingConfig } from '../../shared/storage/config-store.ts';
import type { RunRecord } from '../../shared/storage/runs.ts';
import { type BalancerDeps, runBalancer } from './run.ts';

export interface BalancerLoopOptions {
  intervalMs: number;
  /** Runs per tick, one per shard (default: the stored config's `shards`, read every tick). */
  shards?: number;
  /** Called with each run's record (e.g. to print a line per round). */
  onRun?: (record: RunRecord) => void;
}

export function startBalancerLoop(
  deps: BalancerDeps,
  options: BalancerLoopOptions,
): { stop(): Promise<void> } {
  if (!(options.intervalMs > 0)) {
    throw new RangeError(`intervalMs must be positive, got ${options.intervalMs}`);
  }
  if (options.shards !== undefined && !(Number.isInteger(options.shards) && options.shards >= 1)) {
    throw new RangeError(`shards must be a positive integer, got ${options.shards}`);
  }
  const tick = async () => {
    const round = roundAt(deps.clock(), options.intervalMs);
    let shards = options.shards;
    if (shards === undefined) {
      try {
        shards = (await getBalancingConfig(deps.clients)).shards;
      } catch (error) {
        deps.log.warn({ err: error, round }, 'balancer config unreadable');
        return;
      }
    }
    await Promise.all(
      Array.from({ length: shards }, async (_, shard) => {
        try {
          const record = await runBalancer(deps, { shard, shards, round, roundMs: options.intervalMs });
          options.onRun?.(record);
        } catch (error) {
          deps.log.warn({ err: error, shard, round }, 'balancer run failed');
        }
      }),
    );
  };
  return repeatEvery(options.intervalMs, tick);
}
