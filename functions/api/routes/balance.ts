// Balancing: the config item, running a round now, and the history of runs and migrations.
import type { ApiDeps } from '../deps.ts';
import { newRouter } from '../router.ts';

export function balanceRoutes(_deps: ApiDeps) {
  return newRouter();
}
