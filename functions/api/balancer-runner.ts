// POST /v1/balance runs the same runBalancer the schedule runs, in the API's own process.
import { randomInt } from 'node:crypto';
import { createRng } from '../../shared/domain/rng.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import type { RunRecord } from '../../shared/storage/runs.ts';
import { BALANCER_DEFAULTS, runBalancer } from '../balancer/run.ts';

/** Runs one balancing round now; returns the run record the balancer stored. */
export type BalancerRunner = (options: { dryRun: boolean }) => Promise<RunRecord>;

export function inProcessBalancer(
  clients: Clients,
  clock: () => number,
  options: { roundMs?: number; logError?: (error: unknown) => void } = {},
): BalancerRunner {
  const log = {
    info() {},
    warn(obj: object, msg?: string) {
      options.logError?.({ ...obj, msg });
    },
  };
  return ({ dryRun }) =>
    runBalancer(
      { clients, clock, rng: createRng(randomInt(2 ** 32)), log },
      { dryRun, roundMs: options.roundMs ?? BALANCER_DEFAULTS.roundMs },
    );
}
