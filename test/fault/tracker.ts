// Watches every kernel of a fault schedule and checks, tick by tick, that a guest runs on at most
// one node and that each run continues from the newest image the table accepted. A guest's place
// in its life is counted in ticks; a reference guest run for the same number of ticks gives the
// digest it must have (work since the last image may be redone, never skipped or forked).

import { createKernel } from '../../node-agent/kernel/index.ts';
import type { Kernel, VmLaunch } from '../../node-agent/kernel/types.ts';
import type { ImageRef } from '../../shared/domain/vm-state.ts';
import { createImageStoreOn, type HeldObject, memoryBlobs } from '../../shared/storage/image-store.ts';
import type { GuestSpec } from '../../shared/storage/vms.ts';

/** A tick slower than this may have skipped guests (the smallest guest budget is 500 ms). */
const SLOW_TICK_MS = 200;

/** The digests of one guest after 0, 1, 2, … ticks, computed on demand by an undisturbed kernel. */
export class Reference {
  private readonly kernel: Kernel;
  private readonly digests: string[] = [];
  private started: Promise<void>;

  constructor(
    readonly vm: string,
    guest: GuestSpec,
    memPages: number,
    tickMs: number,
  ) {
    // No budget to speak of: the reference must never skip a slice, even when the machine stalls
    // the process past a node's budget (a tick that starts no call after its budget would shift
    // every later digest of the reference, and the check would blame the node kernels).
    this.kernel = createKernel(
      {
        nodeId: 'reference',
        capacity: 1e9,
        weights: { cpu: 1, io: 0, mem: 0 },
        tickMs,
        clock: () => 0,
        guestBudgetMs: 3_600_000,
      },
      { images: createImageStoreOn(memoryBlobs()) },
    );
    this.started = this.kernel.start({ id: vm, fence: 1, guest, memPages }).then(() => {
      this.digests.push(this.kernel.digest(vm));
    });
  }

  ready() {
    return this.started;
  }

  /** The digest after `ticks` ticks. */
  at(ticks: number): string {
    while (this.digests.length <= ticks) {
      this.kernel.tick();
      this.digests.push(this.kernel.digest(this.vm));
    }
    return this.digests[ticks]!;
  }

  /** The tick count whose digest this is, searching [from, to]; undefined if none. */
  find(digest: string, from: number, to: number): number | undefined {
    for (let t = Math.max(0, from); t <= to; t += 1) if (this.at(t) === digest) return t;
    return undefined;
  }
}

interface Run {
  id: number;
  node: string;
  vm: string;
  /** Ticks of guest life at the run's start and now. */
  start: number;
  pos: number;
  lastTickAt?: number;
  /** Checked at its first tick that it did not start behind the newest accepted image. */
  checked?: boolean;
}

/** Shared by all kernels of one schedule. */
export class Tracker {
  readonly violations: string[] = [];
  private readonly refs = new Map<string, Reference>();
  private readonly imagePos = new Map<string, number>();
  private readonly accepted = new Map<string, number>();
  private readonly lastRun = new Map<string, Run>();
  private readonly retired = new Set<number>();
  private runs = 0;
  ticks = 0;
  /** VMs with no reference (hostile guests): their runs are checked for forks, not for digests. */
  private readonly untracked = new Set<string>();

  constructor(private readonly now: () => number) {}

  async addVm(vm: string, guest: GuestSpec, memPages: number, tickMs: number) {
    const ref = new Reference(vm, guest, memPages, tickMs);
    this.refs.set(vm, ref);
    await ref.ready();
  }

  /** A VM whose runs are watched for forks but whose digests and images are not checked. */
  addUntracked(vm: string) {
    this.untracked.add(vm);
  }

  violation(what: string) {
    this.violations.push(`t=${this.now()}: ${what}`);
  }

  /** The agent's fault hook reports each image the table accepted (recordCheckpoint, markImageReady, markSuspended). */
  accept(vm: string, image: ImageRef) {
    if (this.untracked.has(vm)) return;
    const pos = this.imagePos.get(image.manifest);
    if (pos === undefined)
      return this.violation(`${vm}: the table accepted an image nobody wrote (${image.manifest})`);
    this.accepted.set(vm, Math.max(this.accepted.get(vm) ?? 0, pos));
  }

  /** Ticks of life in the newest accepted image of a VM. */
  acceptedPos(vm: string) {
    return this.accepted.get(vm) ?? 0;
  }

  ref(vm: string) {
    const ref = this.refs.get(vm);
    if (!ref) throw new Error(`no reference for ${vm}`);
    return ref;
  }

  /** Wraps a node's kernel so every start, checkpoint and tick is checked. */
  wrap(node: string, inner: Kernel): Kernel & { dead: boolean; position(id: string): number | undefined } {
    const runs = new Map<string, Run>();
    const tracker = this;
    /** A run of a VM that `node` just loaded (from `image`, or fresh): where it starts, checked by digest. */
    const begin = (id: string, image: ImageRef | undefined) => {
      if (tracker.untracked.has(id)) {
        tracker.runs += 1;
        runs.set(id, { id: tracker.runs, node, vm: id, start: 0, pos: 0 });
        return;
      }
      let start = 0;
      if (image) {
        const pos = tracker.imagePos.get(image.manifest);
        if (pos === undefined) tracker.violation(`${id} started on ${node} from an unknown image`);
        start = pos ?? 0;
      }
      const digest = inner.digest(id);
      if (digest !== tracker.ref(id).at(start))
        tracker.violation(
          `${id} started on ${node} with a digest that is not the reference at tick ${start}`,
        );
      tracker.runs += 1;
      runs.set(id, { id: tracker.runs, node, vm: id, start, pos: start });
    };
    const apply = inner.applyImage?.bind(inner);
    const wrapped = {
      dead: false,
      nodeId: inner.nodeId,
      async start(launch: VmLaunch) {
        const out = await inner.start(launch);
        begin(launch.id, launch.image);
        return out;
      },
      // A held copy brought up to a newer image (a migration target's final delta) is a new run from it.
      ...(apply
        ? {
            async applyImage(id: string, image: ImageRef, held?: HeldObject) {
              const out = await apply(id, image, held);
              begin(id, image);
              return out;
            },
          }
        : {}),
      pause: (id: string) => inner.pause(id),
      resume: (id: string) => inner.resume(id),
      stop(id: string) {
        inner.stop(id);
        runs.delete(id);
      },
      has: (id: string) => inner.has(id),
      running: () => inner.running(),
      async checkpoint(
        id: string,
        mode: 'full' | 'delta',
        options?: { final?: boolean; holdBackBytes?: number },
      ) {
        const run = runs.get(id);
        const result = await inner.checkpoint(id, mode, options);
        if (run && !tracker.untracked.has(id)) {
          const pos = tracker.ref(id).find(result.image.digest, run.start, run.pos);
          if (pos === undefined)
            tracker.violation(
              `${id}: an image written on ${node} matches no tick of its run (forked or skipped)`,
            );
          else tracker.imagePos.set(result.image.manifest, pos);
        }
        return result;
      },
      tick() {
        if (wrapped.dead) return;
        const t = tracker.now();
        for (const id of inner.running()) {
          const run = runs.get(id);
          if (!run) continue;
          const last = tracker.lastRun.get(id);
          if (tracker.retired.has(run.id))
            tracker.violation(`${id} ran on ${node} again after another node took it over (fork)`);
          if (last && last.id !== run.id) {
            if (last.lastTickAt !== undefined && last.lastTickAt >= t)
              tracker.violation(`${id} ran on ${last.node} and ${node} in the same instant`);
            tracker.retired.add(last.id);
          }
          // A copy loaded ahead (a migration target restored from the pre-copy) loses nothing until it
          // runs: work is lost only when a run's first tick continues from behind the newest accepted image.
          if (!run.checked && run.start < tracker.acceptedPos(id))
            tracker.violation(
              `${id} started on ${node} from tick ${run.start}, behind its newest accepted image (tick ${tracker.acceptedPos(id)}): work lost`,
            );
          run.checked = true;
          tracker.lastRun.set(id, run);
          run.lastTickAt = t;
          run.pos += 1;
        }
        tracker.ticks += 1;
        const started = performance.now();
        inner.tick();
        // A tick cut short by a guest that overran its budget (a hostile neighbour, or a stalled
        // machine) starts no more guest calls: the VMs after it in the tick miss that one slice, by
        // design (kernel/budget.ts). Such a VM's life is one tick shorter, not forked.
        if (performance.now() - started >= SLOW_TICK_MS)
          for (const id of inner.running()) {
            const run = runs.get(id);
            if (!run || tracker.untracked.has(id) || run.pos <= run.start) continue;
            const digest = inner.digest(id);
            const ref = tracker.ref(id);
            if (digest !== ref.at(run.pos) && digest === ref.at(run.pos - 1)) run.pos -= 1;
          }
      },
      measure: () => inner.measure(),
      digest: (id: string) => inner.digest(id),
      failure: (id: string) => inner.failure?.(id),
      setTargetLoad: (id: string, load: number | undefined) => inner.setTargetLoad(id, load),
      /** Ticks of life of a VM on this kernel, for the final digest check. */
      position: (id: string) => runs.get(id)?.pos,
    };
    return wrapped;
  }
}
