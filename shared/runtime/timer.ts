// The one interval runner: a task repeated on a period that never overlaps itself. A slow run
// delays the next one instead of piling runs up, and `stop()` waits for a run in progress.

export interface Repeating {
  /** No further runs start; resolves once a run in progress has finished. */
  stop(): Promise<void>;
}

export interface RepeatOptions {
  /** Delay before the first run (default: one interval). */
  firstDelayMs?: number;
  /** Called with a run's error; the runner keeps going either way (default: ignore). */
  onError?: (error: unknown) => void;
}

/** Runs `task` every `intervalMs` (measured from the end of the previous run) until stopped. */
export function repeatEvery(
  intervalMs: number,
  task: () => Promise<void>,
  options: RepeatOptions = {},
): Repeating {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  const run = () => {
    current = Promise.resolve()
      .then(task)
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => schedule(intervalMs));
  };
  const schedule = (delayMs: number) => {
    if (!stopped) timer = setTimeout(run, delayMs);
  };
  schedule(options.firstDelayMs ?? intervalMs);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
    },
  };
}
