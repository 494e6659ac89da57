// The host's budget on guest calls. Guests run on the agent's thread, so a call that never
// returns would stop the node, lease renewal included. Calls run inside node:vm scripts with a
// timeout: Node's watchdog thread asks V8 to terminate execution, which V8 honours at the next
// loop back-edge or function entry of the wasm code. One watchdog covers a batch of calls, since
// its timer thread costs 0.05 ms of CPU and, on a busy machine, milliseconds of waiting to join:
// a batch times out after twice the budget and starts calls only during its first budget, so the
// call a timeout interrupts has run for between one and two budgets. A tick is one batch.
import { createContext, Script } from 'node:vm';

/** The guest entry points the host calls, as they are named in failure reasons. */
export type GuestCall = 'init' | 'demand' | 'run' | 'digest' | 'restore';

/** A guest call the host stopped, or that trapped; `reason` is what the VM's FAILED record says. */
export class GuestFault extends Error {
  override readonly name = 'GuestFault';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The reason for a guest call that threw (a wasm trap, a stack overflow, a host import's error). */
export function trapReason(call: GuestCall, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `trap in ${call}: ${message}`;
}

export const timeoutReason = (call: GuestCall, ms: number) => `timeout in ${call} after ${Math.round(ms)} ms`;

export const memoryReason = (limitPages: number) => `memory limit of ${limitPages} pages exceeded`;

export interface Watchdog {
  readonly budgetMs: number;
  /**
   * Makes calls 0..n-1 in order, each interrupted once it has run between one and two budgets;
   * then `timedOut(i, ms)` and a new batch goes on with call i + 1. Starts no call after `phaseMs`
   * (the rest are skipped). Returns how many calls were started.
   */
  each(
    n: number,
    call: (i: number) => void,
    timedOut: (i: number, ms: number) => void,
    phaseMs?: number,
  ): number;
  /** One call under the budget; a GuestFault naming `what` if it ran out. */
  one<T>(what: GuestCall, fn: () => T): T;
  /** Watchdog batches started so far (each is one timer thread). */
  batches(): number;
  /** Wall time spent starting and stopping watchdogs (outside the calls), in ns. */
  nanos(): number;
}

const TIMEOUT = 'ERR_SCRIPT_EXECUTION_TIMEOUT';

export function createWatchdog(budgetMs: number): Watchdog {
  if (!(budgetMs >= 1)) throw new Error('the guest budget must be at least 1 ms');
  const context = createContext({ body: undefined as (() => void) | undefined });
  const script = new Script('body()');
  const startWindow = budgetMs;
  let batches = 0;
  let nanos = 0;

  const each: Watchdog['each'] = (n, call, timedOut, phaseMs = Number.POSITIVE_INFINITY) => {
    const phaseStart = performance.now();
    let i = 0;
    let callStart = 0;
    while (i < n) {
      const batchStart = performance.now();
      if (batchStart - phaseStart >= phaseMs) break;
      let bodyStart = 0;
      let bodyEnd = 0;
      context.body = () => {
        bodyStart = performance.now();
        while (i < n) {
          callStart = performance.now();
          if (callStart - batchStart >= startWindow || callStart - phaseStart >= phaseMs) break;
          i += 1;
          call(i - 1);
        }
        bodyEnd = performance.now();
      };
      batches += 1;
      try {
        script.runInContext(context, { timeout: 2 * budgetMs });
      } catch (error) {
        if ((error as { code?: string }).code !== TIMEOUT) throw error;
        bodyEnd = performance.now();
        timedOut(i - 1, bodyEnd - callStart);
      }
      nanos += (performance.now() - batchStart - (bodyEnd - bodyStart)) * 1e6;
    }
    context.body = undefined;
    return i;
  };

  return {
    budgetMs,
    each,
    one(what, fn) {
      let out: { value: ReturnType<typeof fn> } | undefined;
      let fault: GuestFault | undefined;
      each(
        1,
        () => {
          out = { value: fn() };
        },
        (_, ms) => {
          fault = new GuestFault(timeoutReason(what, ms));
        },
      );
      if (fault || !out) throw fault ?? new GuestFault(timeoutReason(what, budgetMs));
      return out.value;
    },
    batches: () => batches,
    nanos: () => nanos,
  };
}
