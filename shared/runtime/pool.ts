// One bounded worker pool for every fan-out of I/O (image packs, exchanges of a balancer run).

/**
 * Runs `work` over `items` with at most `limit` calls in flight, each worker taking the next item
 * when its last one settles; rejects with the first failure (the other workers finish their item).
 */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
