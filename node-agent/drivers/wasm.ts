// The `wasm` driver: the WebAssembly kernel (node-agent/kernel) behind the Driver contract.
import type { Kernel } from '../kernel/types.ts';
import type { Driver } from './types.ts';

/** The kernel as the `wasm` driver; the kernel keeps its own API, this only renames and composes. */
export function wasmDriver(kernel: Kernel): Driver {
  return {
    name: 'wasm',
    start: (vm) => kernel.start(vm),
    stop: (id) => kernel.stop(id),
    suspend: (id) => kernel.pause(id),
    resume: (id) => kernel.resume(id),
    has: (id) => kernel.has(id),
    running: () => kernel.running(),
    failure: (id) => kernel.failure?.(id),
    setTargetLoad: (id, targetLoad) => kernel.setTargetLoad(id, targetLoad),
    measure: () => kernel.measure(),
    digest: (id) => kernel.digest(id),
    checkpoint: (id, mode) => kernel.checkpoint(id, mode),
    // The kernel's pre-copy round is a delta image written while the guest runs.
    precopy: (id) => kernel.checkpoint(id, 'delta'),
    async finalState(id) {
      kernel.pause(id);
      return kernel.checkpoint(id, 'delta');
    },
    tick: () => kernel.tick(),
  };
}
