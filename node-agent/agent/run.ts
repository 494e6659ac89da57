// Drives an agent on the real clock: kernel ticks, heartbeats with load reports, and reconciles,
// each on its own timer so a long migration never delays the lease.
import type { Logger } from '../../shared/runtime/logger.ts';
import { type Repeating, repeatEvery } from '../../shared/runtime/timer.ts';
import type { Agent } from './types.ts';

export interface Periods {
  tickMs: number;
  reportMs: number;
  reconcileMs: number;
}

export interface RunningAgent {
  /** Resolves when the loop ends: after stop(), or when the node was taken over by another process. */
  done: Promise<void>;
  /** Stops the timers and shuts the agent down gracefully (checkpoint, release lease). */
  stop(): Promise<void>;
}

export function runAgent(
  agent: Agent,
  periods: Periods,
  log: Logger,
  onReport?: () => Promise<void>,
): RunningAgent {
  let stopping = false;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const ticker = setInterval(() => {
    try {
      agent.tick();
    } catch (error) {
      log.error({ err: (error as Error).message }, 'tick failed');
    }
  }, periods.tickMs);

  /** Repeats `fn` from now on; a node taken over by another process stops the whole loop. */
  const every = (ms: number, what: string, fn: () => Promise<void>): Repeating =>
    repeatEvery(
      ms,
      async () => {
        await fn().catch((error: unknown) => log.warn({ err: (error as Error).message }, `${what} failed`));
        if (agent.status() === 'superseded') void stop();
      },
      { firstDelayMs: 0 },
    );

  const heartbeat = every(periods.reportMs, 'heartbeat', async () => {
    await agent.heartbeat(periods.reportMs);
    await onReport?.();
  });
  const reconcile = every(periods.reconcileMs, 'reconcile', () => agent.reconcile());

  async function stop() {
    if (stopping) return done;
    stopping = true;
    clearInterval(ticker);
    await Promise.all([heartbeat.stop(), reconcile.stop()]);
    await agent.shutdown();
    finish();
    return done;
  }

  return { done, stop };
}
