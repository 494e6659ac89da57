// The door check of a launch: the guest exists, its params are ones it declares and in range, and
// its memory fits the module's declaration. Anything else is a 404/422 before a VM item exists.
import {
  BUILTIN_PARAM_RULES,
  checkMemPages,
  checkParams,
  moduleParamRules,
  type ParamRule,
} from '../../shared/guest-params.ts';
import { BUILTIN_QEMU_IMAGES, COUNTER_PARAM_RULES } from '../../shared/qemu-images.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { findImage } from '../../shared/storage/image-registry.ts';
import { findModule } from '../../shared/storage/modules.ts';
import { notFound, unprocessable } from './problem.ts';

/** VM memory when a launch names none (a module's declared minimum, if larger). */
export const DEFAULT_MEM_PAGES = 16;
/** A qemu VM's least memory (and its default): 16 MiB, what the qemu driver gives it at least. */
export const QEMU_MIN_MEM_PAGES = 256;

/** Checks a launch request; returns the VM's memory in pages. Throws a 404 or 422 problem. */
export async function checkLaunch(
  clients: Clients,
  body: { guest: string; memPages?: number | undefined; params?: Record<string, number> | undefined },
): Promise<number> {
  if (body.guest.startsWith('qemu:')) return checkQemuLaunch(clients, body.guest.slice('qemu:'.length), body);
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

/** A `qemu:<image>` launch: the image is built in or registered, its params and memory fit. */
async function checkQemuLaunch(
  clients: Clients,
  image: string,
  body: { guest: string; memPages?: number | undefined; params?: Record<string, number> | undefined },
): Promise<number> {
  const builtin = (BUILTIN_QEMU_IMAGES as readonly string[]).includes(image);
  if (!builtin && !(await findImage(clients, image))) throw notFound('image', image);
  const rules = image === 'counter' ? COUNTER_PARAM_RULES : {};
  const params = body.params ?? {};
  const problems = [
    // A qemu guest has no kernel params (diskMiB is the wasm kernel's).
    ...Object.keys(params)
      .filter((name) => !(name in rules))
      .map((name) => ({
        path: `params.${name}`,
        message: `the guest does not declare param "${name}" (it takes: ${Object.keys(rules).join(', ') || 'none'})`,
      })),
    ...checkParams(Object.fromEntries(Object.entries(params).filter(([name]) => name in rules)), rules),
  ];
  if (problems.length) throw unprocessable(`${body.guest}: ${problems[0]!.message}`, problems);
  const memPages = body.memPages ?? QEMU_MIN_MEM_PAGES;
  if (memPages < QEMU_MIN_MEM_PAGES)
    throw unprocessable(
      `${body.guest}: a qemu VM has at least ${QEMU_MIN_MEM_PAGES} pages (16 MiB) of memory, got ${memPages}`,
      [{ path: 'memPages', message: `at least ${QEMU_MIN_MEM_PAGES}` }],
    );
  return memPages;
}
