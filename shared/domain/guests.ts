// What a VM runs and the units of its state: the page, the disk block, the built-in guests, and
// which driver (the WebAssembly kernel or QEMU) runs a guest kind. Pure; the API, the kernel, the
// image store and the simulator all take these from here.

/**
 * One page of guest memory: the WebAssembly page, 64 KiB. `memPages`, images and dirty tracking
 * count in it. A virtual-disk block is the same quantity, on purpose, not a second constant: a
 * node caches disk blocks in its memory and counts each block as one page against its memory
 * capacity (`memCapacityPages`).
 */
export const PAGE_BYTES = 65_536;

/** The guests the kernel ships (WAT sources in node-agent/guests). */
export const BUILTIN_GUESTS = ['cpu', 'memory', 'io', 'trace', 'idle'] as const;
export type BuiltinGuest = (typeof BUILTIN_GUESTS)[number];

/** Whether a guest kind names one of the built-in guests. */
export function isBuiltinGuest(kind: string): kind is BuiltinGuest {
  return (BUILTIN_GUESTS as readonly string[]).includes(kind);
}

/** A registered module runs as guest kind `module:<name>`. */
export const MODULE_GUEST_PREFIX = 'module:';
/** A registered module's name. */
export const MODULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A guest kind the WebAssembly kernel runs: a built-in guest or `module:<name>`. */
export const WASM_GUEST_KIND = new RegExp(
  `^(${BUILTIN_GUESTS.join('|')}|${MODULE_GUEST_PREFIX}${MODULE_NAME.source.slice(1, -1)})$`,
);
/** The guest kinds of WASM_GUEST_KIND in words, for messages and help texts. */
export const WASM_GUEST_KINDS_TEXT = `${BUILTIN_GUESTS.join(', ')} or ${MODULE_GUEST_PREFIX}<name>`;

/** The drivers a node may offer: the WebAssembly kernel (the default) and QEMU. */
export const DRIVERS = ['wasm', 'qemu'] as const;
export type DriverName = (typeof DRIVERS)[number];

/** A QEMU VM runs as guest kind `qemu:<image>`. */
export const QEMU_GUEST_PREFIX = 'qemu:';

/** A guest kind split into the driver that runs it and what that driver is given. */
export type ParsedGuest =
  | { driver: 'qemu' /** The QEMU image's name (what follows `qemu:`). */; image: string }
  | { driver: 'wasm' /** The kernel's guest kind, unchanged. */; kind: string };

/** `qemu:<image>` is run by the `qemu` driver; every other guest kind by the `wasm` kernel. */
export function parseGuest(kind: string): ParsedGuest {
  if (kind.startsWith(QEMU_GUEST_PREFIX))
    return { driver: 'qemu', image: kind.slice(QEMU_GUEST_PREFIX.length) };
  return { driver: 'wasm', kind };
}

/** The driver that runs a guest kind. */
export const driverOf = (kind: string): DriverName => parseGuest(kind).driver;

/** A node that declares no drivers is a node of before drivers: it offers the kernel only. */
export const DEFAULT_DRIVERS: readonly DriverName[] = Object.freeze(['wasm']);

const WASM_AND_QEMU: readonly DriverName[] = Object.freeze(['wasm', 'qemu']);

/**
 * The drivers a node offers, from its labels: every node runs wasm guests; a node whose agent found
 * a working QEMU carries the label `qemu=<kvm|tcg>` and offers `qemu` too. One of two shared, frozen
 * lists: the balancer asks for every node's each run, and a list per node was 0.4 MB a run at
 * 10,000 nodes, kept to the run's end.
 */
export function driversOfLabels(labels: Readonly<Record<string, string>> | undefined): readonly DriverName[] {
  return labels?.qemu ? WASM_AND_QEMU : DEFAULT_DRIVERS;
}

/** Whether a node offering `drivers` can run a guest of this kind. */
export function offersDriver(drivers: readonly DriverName[] | undefined, kind: string): boolean {
  return (drivers ?? DEFAULT_DRIVERS).includes(driverOf(kind));
}
