// A node's drivers seen as one (see types.ts): a start goes to the driver of the guest's kind,
// everything else to the driver that holds the VM.
import { type DriverName, driverOf } from '../../shared/domain/guests.ts';
import { Conflict, InvalidInput, NotFound } from '../../shared/storage/errors.ts';
import type { Driver, DriverSet, VmMeasurement } from './types.ts';

export type * from './types.ts';
export { wasmDriver } from './wasm.ts';

/** One set of the node's drivers, at most one per name. */
export function combineDrivers(drivers: readonly Driver[]): DriverSet {
  const byName = new Map<DriverName, Driver>();
  for (const d of drivers) {
    if (byName.has(d.name)) throw new InvalidInput(`driver ${d.name} is given twice`);
    byName.set(d.name, d);
  }
  const offers = [...byName.keys()];
  const driverFor = (kind: string) => {
    const driver = byName.get(driverOf(kind));
    if (!driver)
      throw new InvalidInput(
        `guest ${kind} needs the ${driverOf(kind)} driver; this node offers ${offers.join(', ')}`,
      );
    return driver;
  };
  const holder = (id: string) => drivers.find((d) => d.has(id));
  const held = (id: string) => {
    const driver = holder(id);
    if (!driver) throw new NotFound('vm', id);
    return driver;
  };

  return {
    offers,
    driverFor,
    async start(vm) {
      const other = holder(vm.id);
      if (other) throw new Conflict(`vm ${vm.id} is already on this node (driver ${other.name})`);
      return driverFor(vm.guest.kind).start(vm);
    },
    stop: (id) => holder(id)?.stop(id),
    suspend: (id) => held(id).suspend(id),
    resume: (id) => held(id).resume(id),
    has: (id) => holder(id) !== undefined,
    running: () => drivers.flatMap((d) => d.running()),
    failure: (id) => holder(id)?.failure(id),
    setTargetLoad: (id, targetLoad) => held(id).setTargetLoad(id, targetLoad),
    async measure() {
      const all: VmMeasurement[][] = await Promise.all(drivers.map((d) => d.measure()));
      return all.flat();
    },
    digest: (id) => held(id).digest(id),
    checkpoint: (id, mode) => held(id).checkpoint(id, mode),
    precopy: (id) => held(id).precopy(id),
    finalState: (id) => held(id).finalState(id),
    tick() {
      for (const d of drivers) d.tick?.();
    },
  };
}
