// What a guest's own failure does to its VM, by the VM's restart policy. Pure. A failure is the
// guest's doing (trap, timeout, memory limit, no usable image), never a node's: a VM whose node
// died is moved by the reaper and this policy does not count it.
import type { RestartPolicy } from './vm-state.ts';

export const DEFAULT_RESTART_POLICY: RestartPolicy = { kind: 'never' };
export const DEFAULT_MAX_RETRIES = 5;
/** First retry after this long; each further one waits twice as long, up to MAX_BACKOFF_MS. */
export const BASE_BACKOFF_MS = 10_000;
export const MAX_BACKOFF_MS = 300_000;

export type AfterFailure =
  | { state: 'FAILED'; failures: number }
  | { state: 'PENDING'; failures: number; retryAt: number };

/** The wait before retry number `failures` (1 for the first retry): exponential, capped. */
export const backoffMs = (failures: number) =>
  Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** Math.max(0, failures - 1));

/**
 * The VM's next state after a failure, given the failures before this one: FAILED under `never`
 * or once `maxRetries` retries failed; else PENDING again after the backoff (CrashLoopBackOff).
 */
export function afterFailure(
  policy: RestartPolicy | undefined,
  failuresBefore: number,
  now: number,
): AfterFailure {
  const failures = failuresBefore + 1;
  const p = policy ?? DEFAULT_RESTART_POLICY;
  if (p.kind === 'never') return { state: 'FAILED', failures };
  const max = p.maxRetries ?? DEFAULT_MAX_RETRIES;
  if (failures > max) return { state: 'FAILED', failures };
  return { state: 'PENDING', failures, retryAt: now + backoffMs(failures) };
}
