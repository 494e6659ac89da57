// What the API app needs from the outside world, passed in once: storage clients, a clock, an
// id generator and the balancer runner. Entry files (server.ts, lambda.ts) build it.
import { randomBytes } from 'node:crypto';
import { DEFAULT_DRIFT, DEFAULT_PLAN_TTL_MS } from '../../shared/domain/plans.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { type BalancerRunner, inProcessBalancer } from './balancer-runner.ts';
import type { JwtCheck, SignInConfig } from './operator-auth.ts';
import type { PlanSettings } from './plans.ts';

export type AuthConfig =
  /**
   * Every /v1 request must carry `Authorization: Bearer <token>`. With `jwt` (`seesaw up --oidc`),
   * /ui/v1 requests need a JWT that passes it instead, as the JWT authorizer on AWS would demand.
   */
  | { mode: 'token'; token: string; jwt?: JwtCheck }
  /** On AWS the API Gateway authorises (IAM/JWT) before the request reaches the app. */
  | { mode: 'gateway' };

export interface ApiDeps {
  clients: Clients;
  auth: AuthConfig;
  /** Epoch ms. */
  clock: () => number;
  /** A new id with a readable prefix, e.g. `vm-3f9a1c2e`. */
  newId: (prefix: string) => string;
  /** Runs a round for POST /v1/balance (default: in this process); absent → 503. */
  runBalancer?: BalancerRunner;
  /** How long an API-ordered migration may take before anyone may abort it. */
  migrationDeadlineMs: number;
  /** How long a dry run's plan may be applied, and how far loads may drift before it is refused. */
  plans: PlanSettings;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlMs: number;
  /** Where 5xx causes are reported. */
  logError: (error: unknown) => void;
  /** The dashboard signs in through this provider and calls /ui/v1; without it, the token and /v1. */
  signIn?: SignInConfig;
}

export const randomId = (prefix: string) => `${prefix}-${randomBytes(5).toString('hex')}`;

/** Fills the optional parts of the deps with production defaults. */
export function apiDeps(
  parts: Pick<ApiDeps, 'clients' | 'auth'> & Partial<Omit<ApiDeps, 'clients' | 'auth'>>,
): ApiDeps {
  const clock = parts.clock ?? Date.now;
  const logError = parts.logError ?? ((error: unknown) => console.error('seesaw api:', error));
  return {
    clock,
    newId: randomId,
    migrationDeadlineMs: 60_000,
    idempotencyTtlMs: 24 * 60 * 60 * 1000,
    plans: { ttlMs: DEFAULT_PLAN_TTL_MS, drift: DEFAULT_DRIFT },
    logError,
    runBalancer: inProcessBalancer(parts.clients, clock, { logError }),
    ...parts,
  };
}
