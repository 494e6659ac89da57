// Drives an agent on the real clock: kernel ticks, heartbeats with load reports, and reconciles,
// each on its own timer so a long migration never delays the lease.
import type { Agent, Log } from './agent.ts';

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
  log: Log,
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

  const every = (ms: number, what: string, fn: () => Promise<void>) => {
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    const loop = async () => {
      if (stopping) return;
      running = fn().catch((error: unknown) => log.warn({ err: (error as Error).message }, `${what} failed`));
      await running;
      if (agent.status() === 'superseded') void stop();
      if (!stopping) timer = setTimeout(loop, ms);
    };
    timer = setTimeout(loop, 0);
    return async () => {
      clearTimeout(timer);
      await running;
    };
  };

  const stopHeartbeat = every(periods.reportMs, 'heartbeat', async () => {
    await agent.heartbeat(periods.reportMs);
    await onReport?.();
  });
  const stopReconcile = every(periods.reconcileMs, 'reconcile', () => agent.reconcile());

  async function stop() {
    if (stopping) return done;
    stopping = true;
    clearInterval(ticker);
    await Promise.all([stopHeartbeat(), stopReconcile()]);
    await agent.shutdown();
    finish();
    return done;
  }

  return { done, stop };
}
