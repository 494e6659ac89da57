// One guest instance: the wasm instance with its host imports, and exact capture and restore of
// the state that lives outside linear memory (its exported mutable globals).
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import type { GuestGlobal } from '../../shared/guest-abi.ts';
import { DIRTY_MAP_EXPORT, PARAM_PREFIX } from '../../shared/guest-abi.ts';
import { InvalidInput } from '../../shared/storage/errors.ts';
import type { VirtualDisk } from './disk.ts';

/** What a guest's host imports reach: the kernel's view of this VM. */
export interface GuestHost {
  vtod(): number;
  disk: VirtualDisk;
  series: readonly number[];
  io: { ops: number; bytes: number; netBytes: number };
}

export interface Guest {
  memory: WebAssembly.Memory;
  run(budget: number): number;
  /** Work wanted this tick, or undefined for a greedy guest (no `demand` export). */
  demand(tickMs: number): number | undefined;
  digest(): string;
  captureGlobals(): Record<string, string>;
  restoreGlobals(saved: Record<string, string>): void;
  /** Sets `param_<name>` globals; names the guest lacks are an InvalidInput. */
  setParams(params: Record<string, number>, kernelParams: readonly string[]): void;
  init(): void;
  /** Address of the guest's dirty-page map, if it keeps one. */
  dirtyMap(): number | undefined;
}

type Exports = {
  memory: WebAssembly.Memory;
  run: (budget: number) => number;
  digest: () => bigint;
  demand?: (tickMs: number) => number;
  init?: () => void;
} & Record<string, unknown>;

/**
 * Instantiates a guest; `guard` wraps the instantiation (a module's start function runs in it),
 * so the kernel can hold it to the guest budget.
 */
export async function instantiateGuest(
  module: WebAssembly.Module,
  globals: readonly GuestGlobal[],
  host: GuestHost,
  guard: (instantiate: () => WebAssembly.Instance) => WebAssembly.Instance = (f) => f(),
): Promise<Guest> {
  let exports: Exports | undefined;
  let view = new Uint8Array(0);
  // A grown memory detaches its old buffer, which leaves the view empty: only then read it again.
  const mem = () => {
    if (view.byteLength === 0) view = new Uint8Array(exports!.memory.buffer);
    return view;
  };
  const inMemory = (ptr: number, len: number) => len >= 0 && ptr >= 0 && ptr + len <= mem().byteLength;
  const mapGlobal = globals.some((g) => g.name === DIRTY_MAP_EXPORT && g.type === 'i32')
    ? () => (exports![DIRTY_MAP_EXPORT] as WebAssembly.Global).value as number
    : undefined;
  /** The host's own writes into memory go in the guest's dirty map too. */
  const markWritten = (ptr: number, len: number) => {
    if (!mapGlobal || len <= 0) return;
    const map = mapGlobal();
    const bytes = mem();
    for (let p = Math.floor(ptr / PAGE_BYTES); p <= Math.floor((ptr + len - 1) / PAGE_BYTES); p++)
      if (map + p < bytes.byteLength) bytes[map + p] = 1;
  };
  const env = {
    vtod: () => host.vtod(),
    disk_read: (offset: number, ptr: number, len: number) => {
      if (!inMemory(ptr, len) || !host.disk.read(offset >>> 0, mem(), ptr, len)) return -1;
      markWritten(ptr, len);
      host.io.ops++;
      host.io.bytes += len;
      return len;
    },
    disk_write: (offset: number, ptr: number, len: number) => {
      if (!inMemory(ptr, len) || !host.disk.write(offset >>> 0, mem(), ptr, len)) return -1;
      host.io.ops++;
      host.io.bytes += len;
      return len;
    },
    net_send: (ptr: number, len: number) => {
      if (!inMemory(ptr, len)) return -1;
      host.io.netBytes += len;
      return len;
    },
    series: (i: number) => {
      const n = host.series.length;
      return n ? (host.series[((i % n) + n) % n] ?? -1) : -1;
    },
  };
  const instance = guard(() => new WebAssembly.Instance(module, { env }));
  exports = instance.exports as Exports;
  const state = globals.filter((g) => g.mutable);
  const global = (name: string) => exports![name] as WebAssembly.Global;

  return {
    memory: exports.memory,
    run: (budget) => exports!.run(budget),
    demand: (tickMs) => (exports!.demand ? exports!.demand(tickMs) : undefined),
    digest: () => BigInt.asUintN(64, exports!.digest()).toString(16).padStart(16, '0'),
    captureGlobals() {
      const out: Record<string, string> = {};
      for (const g of state) out[g.name] = encodeValue(global(g.name).value);
      return out;
    },
    restoreGlobals(saved) {
      for (const g of state) {
        const v = saved[g.name];
        if (v === undefined) throw new InvalidInput(`image lacks global ${g.name}`);
        global(g.name).value = decodeValue(v);
      }
    },
    setParams(params, kernelParams) {
      for (const [name, value] of Object.entries(params)) {
        const g = state.find((s) => s.name === PARAM_PREFIX + name);
        if (!g) {
          if (kernelParams.includes(name)) continue;
          const known = state.filter((s) => s.name.startsWith(PARAM_PREFIX)).map((s) => s.name.slice(6));
          throw new InvalidInput(
            `unknown guest param "${name}" (known: ${[...known, ...kernelParams].join(', ')})`,
          );
        }
        if (typeof value !== 'number' || !Number.isFinite(value))
          throw new InvalidInput(`guest param "${name}" must be a finite number`);
        global(g.name).value = g.type === 'i64' ? BigInt(Math.trunc(value)) : value;
      }
    },
    init: () => exports!.init?.(),
    dirtyMap: () => mapGlobal?.(),
  };
}

/** Grows a guest's memory to at least `pages`. */
export function growMemory(memory: WebAssembly.Memory, pages: number) {
  const have = memory.buffer.byteLength / PAGE_BYTES;
  if (pages <= have) return;
  try {
    memory.grow(pages - have);
  } catch {
    throw new InvalidInput(`the guest's memory cannot grow to ${pages} pages`);
  }
}

/** i64 values as decimal strings; other numbers as `f:` + the 16 hex digits of their f64 bits. */
export function encodeValue(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Number(value));
  return `f:${view.getBigUint64(0).toString(16).padStart(16, '0')}`;
}

export function decodeValue(text: string): number | bigint {
  if (!text.startsWith('f:')) return BigInt(text);
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${text.slice(2)}`));
  return view.getFloat64(0);
}
