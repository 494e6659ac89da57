// The door check of a launch: the guest exists, its params are ones it declares and in range, and
// its memory fits the module's declaration. Anything else is a 404/422 before a VM item exists.
import {
  BUILTIN_PARAM_RULES,
  checkMemPages,
  checkParams,
  moduleParamRules,
  type ParamRule,
} from '../../shared/guest-params.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { findModule } from '../../shared/storage/modules.ts';
import { notFound, unprocessable } from './problem.ts';

/** VM memory when a launch names none (a module's declared minimum, if larger). */
export const DEFAULT_MEM_PAGES = 16;

/** Checks a launch request; returns the VM's memory in pages. Throws a 404 or 422 problem. */
export async function checkLaunch(
  clients: Clients,
  body: { guest: string; memPages?: number | undefined; params?: Record<string, number> | undefined },
): Promise<number> {
  let rules: Readonly<Record<string, ParamRule>>;
  let memPages = body.memPages ?? DEFAULT_MEM_PAGES;
  if (body.guest.startsWith('module:')) {
    const name = body.guest.slice('module:'.length);
    const module = await findModule(clients, name);
    if (!module) throw notFound('module', name);
    rules = moduleParamRules(module.exports);
    const { memory } = module.exports;
    if (body.memPages === undefined) memPages = Math.max(memPages, memory.initialPages);
    const problems = checkMemPages(memPages, memory);
    if (problems.length)
      throw unprocessable(
        `module ${name}: ${problems[0]}`,
        problems.map((message) => ({ path: 'memPages', message })),
      );
  } else rules = BUILTIN_PARAM_RULES[body.guest] ?? {};
  const problems = checkParams(body.params ?? {}, rules);
  if (problems.length) throw unprocessable(`${body.guest}: ${problems[0]!.message}`, problems);
  return memPages;
}
