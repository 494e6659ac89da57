// Guest modules: upload a wasm module (validated against the guest ABI) and list them.
import type { ApiDeps } from '../deps.ts';
import { newRouter } from '../router.ts';

export function moduleRoutes(_deps: ApiDeps) {
  return newRouter();
}
