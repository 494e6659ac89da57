// A VM's way in and out of the image store: loading it fresh or from its image chain (falling back
// to an older image when the newest is broken), and writing its state as a full or delta image.
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { MAX_VM_MEM_PAGES } from '../../shared/guest-params.ts';
import { Corrupt, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import {
  deltaDepth,
  type ImageManifest,
  type LoadedImage,
  MAX_DELTA_DEPTH,
  sha256,
} from '../../shared/storage/image-store.ts';
import { type BlockCoding, codeBlock, encodeXorDelta } from '../../shared/storage/page-delta.ts';
import { GuestFault, trapReason } from './budget.ts';
import { VirtualDisk } from './disk.ts';
import { type Guest, growMemory, instantiateGuest } from './guest.ts';
import { sample, startMeasuring } from './measure.ts';
import { PageTracker } from './pages.ts';
import {
  callAlone,
  emptyPeriod,
  type KernelState,
  nowNs,
  type SentPage,
  UNITS_PER_CORE,
  type Vm,
  vtodOf,
} from './state.ts';
import type { CheckpointResult, StartResult, VmLaunch } from './types.ts';

/** A VM's virtual disk size unless its guest params say `diskMiB`. */
export const DEFAULT_DISK_MIB = 16;
/** Params the kernel reads itself; a guest need not declare them. */
const KERNEL_PARAMS = ['diskMiB'] as const;
/** A delta whose image would point into more packs than this is written as a full image instead, which bounds what a restore reads. */
export const MAX_CHAIN_PACKS = 32;
/** Older images a restore tries, newest first, when the newest is broken. */
export const MAX_FALLBACK_IMAGES = 8;
/** Pages per VM kept as last imaged, for sub-page deltas (64 MiB); a page past it is sent whole. */
export const MAX_SENT_PAGES = 1024;
/** A page whose delta codes to more than this is sent whole: hardly smaller, and it starts a fresh chain. */
const DELTA_LIMIT_BYTES = (PAGE_BYTES * 7) / 8;

/**
 * Loads a VM; when its newest image is broken (Corrupt: missing, unreadable, failing a checksum or
 * a digest), the newest older image of the VM that restores instead, with the guest time lost.
 * Corrupt when none does. Never retries by itself: the agent fails the VM on Corrupt.
 */
export async function launchOrFallBack(
  state: KernelState,
  vm: VmLaunch,
): Promise<{ vm: Vm; recovery?: StartResult['recovery']; timing?: StartResult['timing'] }> {
  try {
    const timing = { downloadMs: 0, applyMs: 0 };
    return { vm: await launch(state, vm, true, timing), timing };
  } catch (error) {
    const newest = vm.image;
    if (!(error instanceof Corrupt) || !newest) throw error;
    const fenceOf = Number(/^images\/[^/]+\/(\d+)\//.exec(newest.manifest)?.[1] ?? Number.POSITIVE_INFINITY);
    const older = (await state.images.listImages(vm.id))
      .filter((r) => r.seq < newest.seq && r.fence <= fenceOf)
      .slice(0, MAX_FALLBACK_IMAGES);
    for (const candidate of older) {
      try {
        const image = { manifest: candidate.manifest, seq: candidate.seq, digest: '', vtod: 0 };
        const loaded = await launch(state, { ...vm, image }, false);
        const m = loaded.manifest!;
        return {
          vm: loaded,
          recovery: {
            image: { manifest: candidate.manifest, seq: m.seq, digest: m.digest, vtod: m.vtod },
            why: error.message,
            lostSeconds: Math.max(0, Math.round((newest.vtod - m.vtod) / 100) / 10),
          },
        };
      } catch (olderError) {
        if (!(olderError instanceof Corrupt)) throw olderError;
      }
    }
    const tried = older.length
      ? `none of the ${older.length} older images restores either`
      : 'no older image';
    throw new Corrupt(`${error.message}; ${tried}`);
  }
}

/**
 * Loads a VM fresh, or from `vm.image`, whose digest must match the table's unless `checkTableDigest`
 * is false; `timing` learns how long reading and restoring the image took.
 */
async function launch(
  state: KernelState,
  vm: VmLaunch,
  checkTableDigest = true,
  timing?: NonNullable<StartResult['timing']>,
): Promise<Vm> {
  if (!Number.isInteger(vm.memPages) || vm.memPages < 1 || vm.memPages > MAX_VM_MEM_PAGES)
    throw new InvalidInput(`memPages must be an integer in 1..${MAX_VM_MEM_PAGES}`);
  const { module, globals, writesMemory } = await state.modules.load(vm.guest.kind, vm.memPages);
  const diskMiB = vm.guest.params?.diskMiB ?? DEFAULT_DISK_MIB;
  if (!(diskMiB > 0 && diskMiB <= 4095)) throw new InvalidInput('diskMiB must be in (0, 4095]');
  const t0 = performance.now();
  const image = vm.image ? await openImage(state, vm) : undefined;
  const t1 = performance.now();
  const disk = image
    ? VirtualDisk.from(image.manifest.disk.bytes, image.disk, state.diskBudget)
    : new VirtualDisk(Math.floor(diskMiB * 1024 * 1024), state.diskBudget);
  const { clock, tickMs } = state.options;
  const io = { ops: 0, bytes: 0, netBytes: 0 };
  const record = { io, disk, vtodOffset: 0, lastVtod: clock(), memLimit: vm.memPages } as Vm;
  // Until the guest exists, a fault is the instantiation's (a start function) or a trap in it.
  const guest = await instantiateGuest(
    module,
    globals,
    { vtod: () => vtodOf(record, clock), disk, series: vm.guest.series ?? [], io },
    (instantiate) => {
      try {
        return state.watchdog.one('init', instantiate);
      } catch (error) {
        if (error instanceof GuestFault) throw error;
        throw new GuestFault(trapReason('init', error));
      }
    },
  );
  record.guest = guest;
  const started = image ? restore(state, record, vm, image, checkTableDigest) : startFresh(state, record, vm);
  if (timing) Object.assign(timing, { downloadMs: t1 - t0, applyMs: performance.now() - t1 });
  const loaded = Object.assign(record, started, {
    id: vm.id,
    fence: vm.fence,
    spec: vm.guest,
    targetLoad: vm.targetLoad,
    capPerTick:
      vm.cpuLimit === undefined ? undefined : Math.floor((vm.cpuLimit * UNITS_PER_CORE * tickMs) / 1000),
    paused: vm.paused ?? false,
    writesMemory,
    ranSinceScan: true,
    chain: Promise.resolve(),
    period: emptyPeriod(),
    lastLoad: 0,
    lastDemand: 0,
    lastShare: 0,
  });
  if (!image) startMeasuring(state.counters, loaded);
  return loaded;
}

/** The VM's image, checked to be this VM's, at the sequence and of the guest kind the table says. */
async function openImage(state: KernelState, vm: VmLaunch): Promise<LoadedImage> {
  const ref = vm.image!;
  const image = await state.images.getImage(ref.manifest);
  const m = image.manifest;
  if (m.vm !== vm.id) throw new Corrupt(`image ${ref.manifest} belongs to VM ${m.vm}, not ${vm.id}`);
  if (m.seq !== ref.seq) throw new Corrupt(`image ${ref.manifest} has seq ${m.seq}, not ${ref.seq}`);
  if (m.guest.kind !== vm.guest.kind)
    throw new InvalidInput(`image of ${vm.id} runs ${m.guest.kind}, not ${vm.guest.kind}`);
  return image;
}

type Started = Pick<
  Vm,
  'tracker' | 'vtodOffset' | 'lastVtod' | 'seq' | 'lastDigest' | 'digestFresh' | 'sent'
> &
  Partial<Pick<Vm, 'manifest'>>;

/** A fresh guest: its params set and its `init` run. */
function startFresh(state: KernelState, record: Vm, vm: VmLaunch): Started {
  const { guest } = record;
  growMemory(guest.memory, vm.memPages);
  guest.setParams(vm.guest.params ?? {}, KERNEL_PARAMS);
  callAlone(state, record, 'init', () => guest.init());
  const now = state.options.clock();
  return {
    tracker: new PageTracker(0),
    vtodOffset: 0,
    lastVtod: now,
    seq: 0,
    lastDigest: '',
    digestFresh: false,
    sent: new Map(),
  };
}

/** The guest put back in the image's state, which must digest to what the image (and the table) recorded. */
function restore(
  state: KernelState,
  record: Vm,
  vm: VmLaunch,
  image: LoadedImage,
  checkTableDigest: boolean,
): Started {
  const { guest } = record;
  const m = image.manifest;
  const ref = vm.image!;
  growMemory(guest.memory, Math.max(m.memPages, vm.memPages));
  writePages(guest, image.pages);
  guest.restoreGlobals(m.globals);
  const digest = callAlone(state, record, 'restore', () => guest.digest());
  if (digest !== m.digest)
    throw new Corrupt(`image ${ref.manifest} restores to digest ${digest}, not ${m.digest}`);
  if (checkTableDigest && digest !== ref.digest)
    throw new Corrupt(`image ${ref.manifest} restores to digest ${digest}; the table recorded ${ref.digest}`);
  const tracker = new PageTracker(0);
  tracker.reset(guest.memory.buffer);
  // The guest's clock continues from the image's, never behind it, whatever this node's clock says.
  const now = state.options.clock();
  const vtodOffset = Math.max(m.vtod, now + m.vtodOffset) - now;
  return {
    tracker,
    vtodOffset,
    lastVtod: m.vtod,
    seq: m.seq,
    lastDigest: m.digest,
    digestFresh: true,
    manifest: m,
    sent: sentPages(m, image.pages),
  };
}

/** The restored (or applied) pages as the image holds them, as the base of the next sub-page deltas. */
export function sentPages(
  m: ImageManifest,
  pages: ReadonlyMap<number, Uint8Array>,
  into: Map<number, SentPage> = new Map(),
): Map<number, SentPage> {
  for (const [i, , , h] of m.pages) {
    const bytes = pages.get(i);
    if (bytes && (into.has(i) || into.size < MAX_SENT_PAGES))
      into.set(i, { bytes: new Uint8Array(bytes), sha256: h });
  }
  return into;
}

/**
 * The dirty pages a delta image can send as sub-page deltas: those whose previous entry is the
 * page as last sent (same sha256), not too many deltas from a whole page, and whose XOR codes
 * small. They leave `pages`; the rest go whole.
 */
function subPageDeltas(vm: Vm, pages: Map<number, Uint8Array>, maxDepth: number) {
  const deltas = new Map<number, { delta: Uint8Array; sha256: string }>();
  const previous = vm.manifest;
  if (!previous || vm.sent.size === 0) return deltas;
  const entries = new Map(previous.pages.map((e) => [e[0], e]));
  for (const [i, bytes] of pages) {
    const entry = entries.get(i);
    const sent = vm.sent.get(i);
    if (!entry || !sent || sent.sha256 !== entry[3] || deltaDepth(entry) >= maxDepth) continue;
    const delta = encodeXorDelta(sent.bytes, bytes, DELTA_LIMIT_BYTES);
    if (!delta) continue;
    deltas.set(i, { delta, sha256: sha256(bytes) });
    pages.delete(i);
  }
  return deltas;
}

/** Blocks of an image coded first, spread over it; when none of them codes, none of the rest is tried. */
const CODING_PROBES = 4;

/**
 * The blocks of an image that compress (codeBlock: brotli, when it saves an eighth), as they are
 * stored: whole pages and sub-page deltas alike; the rest, and disk blocks, go raw. Memory that
 * does not compress (random bytes) is told by a few probes, so its image costs them only, not a
 * pass over every page; an image of mixed memory whose probes all miss goes raw, bytes not lost.
 */
function codeBlocks(pages: Map<number, Uint8Array>, deltas?: Map<number, { delta: Uint8Array }>) {
  const blocks: [number, Uint8Array][] = [
    ...pages,
    ...[...(deltas ?? [])].map(([i, d]) => [i, d.delta] as [number, Uint8Array]),
  ];
  const coded = new Map<number, { bytes: Uint8Array; coding: BlockCoding }>();
  const code = (at: number) => {
    const [i, bytes] = blocks[at]!;
    const c = codeBlock(bytes);
    if (c) coded.set(i, c);
  };
  const probes = new Set<number>();
  for (let k = 0; k < Math.min(CODING_PROBES, blocks.length); k++)
    probes.add(Math.floor(((k + 0.5) * blocks.length) / Math.min(CODING_PROBES, blocks.length)));
  for (const at of probes) code(at);
  if (coded.size === 0) return coded;
  for (let at = 0; at < blocks.length; at++) if (!probes.has(at)) code(at);
  return coded;
}

/** Resident pages wireRatio codes, spread evenly over them. */
const RATIO_SAMPLE_PAGES = 8;

/**
 * The fraction of their bytes a VM's resident pages take once coded (codeBlock), from up to
 * RATIO_SAMPLE_PAGES of them: the pre-copy's first estimate of what its rounds will write, before
 * a round has measured that (a few ms, once a migration). 1 when nothing is resident.
 */
export function wireRatio(state: KernelState, vm: Vm): number {
  sample(state.counters, vm);
  const resident = vm.tracker.pagesFor('full');
  const n = Math.min(RATIO_SAMPLE_PAGES, resident.length);
  if (n === 0) return 1;
  const memory = new Uint8Array(vm.guest.memory.buffer);
  let wire = 0;
  for (let k = 0; k < n; k++) {
    const p = resident[Math.floor((k * resident.length) / n)]!;
    wire += codeBlock(memory.subarray(p * PAGE_BYTES, (p + 1) * PAGE_BYTES))?.bytes.byteLength ?? PAGE_BYTES;
  }
  return wire / (n * PAGE_BYTES);
}

function writePages(guest: Guest, pages: Map<number, Uint8Array>) {
  const bytes = new Uint8Array(guest.memory.buffer);
  bytes.fill(0);
  for (const [p, page] of pages) bytes.set(page, p * PAGE_BYTES);
}

/**
 * Writes the VM's state as the next image of its chain: a delta of what changed since the previous
 * image, or a full image when asked, when there is none, or when the chain is long.
 */
export async function writeImage(
  state: KernelState,
  vm: Vm,
  mode: 'full' | 'delta',
  options: { final?: boolean; holdBackBytes?: number } = {},
): Promise<CheckpointResult> {
  if (state.vms.get(vm.id) !== vm) throw new NotFound('vm', vm.id);
  const { clock } = state.options;
  // Everything up to putImage is synchronous, so pages, globals, disk and clock are one instant.
  const t0 = nowNs();
  const digest = callAlone(state, vm, 'digest', () => vm.guest.digest());
  const kind =
    mode === 'full' || !vm.manifest || vm.manifest.packs.length >= MAX_CHAIN_PACKS ? 'full' : 'delta';
  sample(state.counters, vm, kind === 'full');
  const pages = vm.tracker.copyPages(vm.guest.memory.buffer, vm.tracker.pagesFor(kind));
  const written = new Map(pages);
  // A migration's final delta may go one delta deeper than other images: those reset the chains
  // first, so the final delta, which is downtime, is never the one that sends pages whole for it.
  const deltas =
    kind === 'delta'
      ? subPageDeltas(vm, pages, options.final ? MAX_DELTA_DEPTH : MAX_DELTA_DEPTH - 1)
      : undefined;
  const coded = codeBlocks(pages, deltas);
  const marks = vm.tracker.markImaged();
  const disk = vm.disk.takeBlocks(kind);
  const write = {
    vm: vm.id,
    fence: vm.fence,
    seq: ++vm.seq,
    kind,
    ...(vm.manifest ? { previous: vm.manifest } : {}),
    guest: vm.spec,
    memPages: vm.guest.memory.buffer.byteLength / PAGE_BYTES,
    pages,
    ...(deltas?.size ? { deltas } : {}),
    ...(coded.size ? { coded } : {}),
    disk: { bytes: vm.disk.bytes, blocks: disk.blocks },
    globals: vm.guest.captureGlobals(),
    vtod: vtodOf(vm, clock),
    vtodOffset: vm.vtodOffset,
    digest,
    createdAt: clock(),
  } as const;
  const snapshotNs = nowNs() - t0;
  state.counters.totalNanos += snapshotNs;
  try {
    const out = await state.images.putImage(write, { holdBackBytes: options.holdBackBytes ?? -1 });
    vm.manifest = out.manifest;
    sentPages(out.manifest, written, vm.sent);
    const timing = { encodeMs: snapshotNs / 1e6 + out.timing.encodeMs, uploadMs: out.timing.uploadMs };
    return {
      image: out.ref,
      bytes: out.bytes,
      pages: written.size,
      timing,
      ...(out.held ? { held: out.held } : {}),
    };
  } catch (error) {
    vm.tracker.restoreMarks(marks);
    vm.disk.restoreMarks(disk.marks);
    throw error;
  }
}
