// What a launch may pass a guest: the params it declares (its `param_<name>` globals), each within
// the range of its wasm type and, for the built-in guests, of what it means. Pure; the API checks a
// launch with it at the door, so a bad one is a 422 and never a VM that stays PENDING forever.
import { type BuiltinGuest, PAGE_BYTES } from './domain/guests.ts';
import type { GuestExports } from './guest-abi.ts';

export interface ParamRule {
  type: 'i32' | 'i64' | 'f32' | 'f64';
  min?: number;
  max?: number;
}

/** The largest VM memory in 64 KiB pages (4 GiB, the wasm32 limit). */
export const MAX_VM_MEM_PAGES = 2 ** 32 / PAGE_BYTES;
/** The largest virtual disk in MiB. */
export const MAX_DISK_MIB = 4095;
/** At most this many params a module may declare. */
export const MAX_MODULE_PARAMS = 64;

const rate = { type: 'f64', min: 0, max: 1e12 } as const;
/** Params the kernel reads itself, for every guest. */
export const KERNEL_PARAM_RULES: Readonly<Record<string, ParamRule>> = {
  diskMiB: { type: 'f64', min: Number.MIN_VALUE, max: MAX_DISK_MIB },
};

/** The built-in guests' params (their WAT `param_*` globals; a unit test keeps the two in step), one entry per built-in guest. */
export const BUILTIN_PARAM_RULES: Readonly<Record<string, Readonly<Record<string, ParamRule>>>> = {
  cpu: { rate },
  io: {
    rate,
    opBytes: { type: 'i32', min: 512, max: 65_536 },
    diskMiB: { type: 'i32', min: 1, max: MAX_DISK_MIB },
  },
  memory: {
    wsPages: { type: 'i32', min: 0, max: MAX_VM_MEM_PAGES },
    rate,
    residentPages: { type: 'i32', min: 0, max: MAX_VM_MEM_PAGES },
  },
  trace: { peak: rate, stepTicks: { type: 'i32', min: 1, max: 1_000_000 } },
  idle: {},
} satisfies Record<BuiltinGuest, Record<string, ParamRule>>;

const TYPE_RANGE: Record<ParamRule['type'], { min: number; max: number; integer: boolean }> = {
  i32: { min: -(2 ** 31), max: 2 ** 31 - 1, integer: true },
  i64: { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER, integer: true },
  f32: { min: -3.4028234663852886e38, max: 3.4028234663852886e38, integer: false },
  f64: { min: -Number.MAX_VALUE, max: Number.MAX_VALUE, integer: false },
};

/** The params a module declares, as rules (its globals' wasm types). */
export function moduleParamRules(
  exports: Pick<GuestExports, 'globals' | 'params'>,
): Record<string, ParamRule> {
  const rules: Record<string, ParamRule> = {};
  for (const name of exports.params) {
    const global = exports.globals.find((g) => g.name === `param_${name}`);
    const type = global?.type;
    if (type === 'i32' || type === 'i64' || type === 'f32' || type === 'f64') rules[name] = { type };
  }
  return rules;
}

/** One problem per param the guest does not declare or whose value is out of range; empty when all fit. */
export function checkParams(
  params: Readonly<Record<string, number>>,
  declared: Readonly<Record<string, ParamRule>>,
): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const known = { ...KERNEL_PARAM_RULES, ...declared };
  for (const [name, value] of Object.entries(params)) {
    const rule = known[name];
    const path = `params.${name}`;
    if (!rule) {
      const names = Object.keys(known).sort().join(', ');
      problems.push({ path, message: `the guest does not declare param "${name}" (it takes: ${names})` });
      continue;
    }
    const range = TYPE_RANGE[rule.type];
    const min = Math.max(range.min, rule.min ?? range.min);
    const max = Math.min(range.max, rule.max ?? range.max);
    if (!Number.isFinite(value) || value < min || value > max)
      problems.push({ path, message: `param "${name}" must be in [${min}, ${max}], got ${value}` });
    else if (range.integer && !Number.isInteger(value))
      problems.push({
        path,
        message: `param "${name}" is an ${rule.type} and must be an integer, got ${value}`,
      });
  }
  return problems;
}

/** Problems with a module's own resource declarations, checked when it is registered. */
export function checkModuleResources(exports: Pick<GuestExports, 'globals' | 'params' | 'memory'>): string[] {
  const problems: string[] = [];
  const { initialPages, maximumPages } = exports.memory;
  if (initialPages > MAX_VM_MEM_PAGES)
    problems.push(`memory declares ${initialPages} initial pages; a VM has at most ${MAX_VM_MEM_PAGES}`);
  if (maximumPages !== undefined && maximumPages < 1)
    problems.push('memory declares a maximum of 0 pages; a guest needs at least one');
  if (exports.params.length > MAX_MODULE_PARAMS)
    problems.push(`module declares ${exports.params.length} params; at most ${MAX_MODULE_PARAMS}`);
  for (const name of exports.params) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(name))
      problems.push(`param "${name}" must be 1–64 of A-Z a-z 0-9 _, starting with a letter`);
    const global = exports.globals.find((g) => g.name === `param_${name}`);
    if (global && !['i32', 'i64', 'f32', 'f64'].includes(global.type))
      problems.push(`param "${name}" has type ${global.type}; params are numbers`);
  }
  return problems;
}

/** Problems with a VM's memory against its module's declaration. */
export function checkMemPages(
  memPages: number,
  memory: { initialPages: number; maximumPages?: number },
): string[] {
  if (memPages < memory.initialPages)
    return [`memPages ${memPages} is below the ${memory.initialPages} pages the module's memory starts with`];
  if (memory.maximumPages !== undefined && memPages > memory.maximumPages)
    return [`memPages ${memPages} is above the module's declared maximum of ${memory.maximumPages} pages`];
  return [];
}
