// The contract between the agent and what runs a VM's guest. Two drivers satisfy it: `wasm`, the
// WebAssembly kernel (node-agent/kernel, the default), and `qemu`, one QEMU process per VM. The
// agent decides *what* happens to a VM from the table (fences, leases, orders); a driver does it
// to the guest and writes its state to the image store. A VM's guest kind names its driver
// (`qemu:<image>` → qemu, anything else → wasm: parseGuest in shared/domain/guests.ts), and a node
// declares the drivers it offers. See docs/kernel.md, "Drivers".
import type { DriverName } from '../../shared/domain/guests.ts';
import type { CheckpointResult, StartResult, VmLaunch, VmMeasurement } from '../kernel/types.ts';

export type { CheckpointResult, StartResult, VmLaunch, VmMeasurement };

/** A result a driver may give at once (the kernel, in process) or later (QEMU, over QMP). */
export type Awaitable<T> = T | Promise<T>;

/** The image a migration source writes last: what the target loads, and what the move cost. */
export interface FinalState extends CheckpointResult {
  /**
   * Pre-copy the driver did itself inside this call (QEMU's own live migration): its rounds and
   * bytes. Absent when the agent drove the pre-copy through `precopy`.
   */
  precopy?: { rounds: number; bytes: number };
  /** How long the guest was stopped, as the driver measured it (QEMU's downtime), in ms. */
  downtimeMs?: number;
}

export interface Driver {
  /** Which driver this is: a VM whose guest kind parses to this name runs here. */
  readonly name: DriverName;

  // Life cycle.
  /**
   * Loads a VM: fresh, or from its image chain when `vm.image` is set (checking the image and
   * falling back to an older one when the newest is broken: `StartResult.recovery`). A VM with
   * `paused` is loaded but not run until `resume` (a migration target before it owns the VM).
   * Throws Corrupt when no image restores, InvalidInput for a launch it cannot run, GuestFault
   * when the guest fails while starting, Conflict when the VM is already here.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: the kernel returns nothing when it did not fall back
  start(vm: VmLaunch): Promise<StartResult | undefined | void>;
  /** Drops the VM from the node without writing anything (it moved on, or the node lost its fence). */
  stop(id: string): Awaitable<void>;
  /** Stops running the guest and keeps its state in memory (suspend, migration stop-and-copy). */
  suspend(id: string): Awaitable<void>;
  /** Runs a suspended guest again; Conflict if it failed. */
  resume(id: string): Awaitable<void>;
  has(id: string): boolean;
  /** The VMs loaded here and not suspended. */
  running(): string[];
  /** Why a loaded VM's guest failed (it then stays stopped for good), or undefined. */
  failure(id: string): string | undefined;
  /** A VM's programmed target load (Fig. 5): its weight when the node is over capacity. */
  setTargetLoad(id: string, targetLoad: number | undefined): void;

  // Load.
  /** Each VM's load factors and counters since the previous call (one reporting period). */
  measure(): Awaitable<VmMeasurement[]>;
  /**
   * A digest of the guest's state that is equal for equal states: a VM that migrated ten times
   * shows the digest of one that never moved. GuestFault when the guest fails computing it.
   */
  digest(id: string): Awaitable<string>;

  // State in the image store.
  /**
   * Writes the VM's state to the image store: `full` everything, `delta` what changed since the
   * previous image of its chain. Safe while the guest runs, exact when it is suspended; a suspend
   * writes a `full` (or `delta`) checkpoint of the suspended guest.
   */
  checkpoint(id: string, mode: 'full' | 'delta'): Promise<CheckpointResult>;
  /**
   * Migration, source side, while the guest runs: one pre-copy round (what changed since the
   * previous image). The agent repeats it while the dirty set shrinks. A driver that pre-copies
   * by itself in `finalState` (QEMU) writes nothing here and says `pages: 0`.
   */
  precopy(id: string): Promise<CheckpointResult>;
  /**
   * Migration, source side: stops the guest and writes its final state (the last dirty pages or
   * QEMU's stream, CPU state, the time of day), which the target starts from with `start`.
   */
  finalState(id: string): Promise<FinalState>;

  /** Drivers the agent clocks (the kernel's time slices) run one tick; QEMU schedules itself and has none. */
  tick?(): void;
}

/** The drivers a node offers, seen as one: each VM is routed to the driver of its guest kind. */
export interface DriverSet extends Omit<Driver, 'name' | 'tick'> {
  /** The drivers this node offers (reported on its node item, so placement can match guests to it). */
  readonly offers: readonly DriverName[];
  /** The driver that runs a guest kind here; InvalidInput when the node does not offer it. */
  driverFor(kind: string): Driver;
  /** Ticks every driver that has a tick. */
  tick(): void;
}
