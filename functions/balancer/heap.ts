// The V8 heap flags a balancer run works under: the Lambda's NODE_OPTIONS and the bench process that
// times a run use the same ones, so the bench's figure is that of the code as it is deployed.

/** The balancer function's memory (MiB): the Lambda's `memorySize`, and what the bench sizes the heap by. */
export const BALANCER_MEMORY_MB = 1024;

/**
 * The young generation's semi-space (MiB). A 10,000-node run allocates about 35 MB, much of it (the
 * input's VMs, the round's decisions) alive for the whole run: with V8's default of at most 16 MiB
 * (less when memory is small), scavenges copy those objects again and again. Of 16, 24, 32, 48 and
 * 64 MiB, measured in alternation on the bench's 10,000-node run, 32 gave the lowest medians: a
 * larger one saves scavenges but each copies more and the allocations stray further from the cache.
 */
export const BALANCER_SEMI_SPACE_MB = 32;

/**
 * The heap flags for a process of `memoryMb`: the semi-space above, and an old space of 90 % of the
 * memory less the young generation (three semi-spaces). Lambda's Node.js bootstrap derives both sizes
 * from the memory only when NODE_OPTIONS names neither, so naming one means naming both.
 */
export function balancerHeapFlags(memoryMb: number = BALANCER_MEMORY_MB): string[] {
  const oldSpace = Math.floor(memoryMb * 0.9) - 3 * BALANCER_SEMI_SPACE_MB;
  return [`--max-semi-space-size=${BALANCER_SEMI_SPACE_MB}`, `--max-old-space-size=${oldSpace}`];
}
