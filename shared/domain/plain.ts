// Plain objects made by `new`, for results a run keeps to its end (see plainMaker).

/**
 * A maker of plain objects by `new`. V8 makes a literal's objects straight in the old generation
 * once those of that literal outlive a young collection (allocation-site pretenuring): a round's
 * moves and decisions live to the end of the run, so each run left 3.3 MB of them in the old
 * generation, to be marked by the next full collection and taking fresh pages. Objects a
 * constructor makes are never pretenured: they start young and, dead once the run is over, most
 * never leave the young generation. The prototype is Object's, so each is a plain object to whatever
 * reads it (JSON, deep equality, and the DynamoDB document client's marshall, which refuses class
 * instances). `init` sets every field, in the order a literal would list them.
 */
export function plainMaker<A extends unknown[], T>(
  init: (this: T, ...args: A) => void,
): new (
  ...args: A
) => T {
  init.prototype = Object.prototype;
  return init as unknown as new (
    ...args: A
  ) => T;
}
