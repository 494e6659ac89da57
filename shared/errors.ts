// Typed errors that callers act on, matched with `instanceof`; the API maps them to HTTP
// problems in one place (functions/api/problem.ts). `name` is for logs only.

/** A named transition's guard did not hold: the item changed or is not in the expected state. */
export class ConditionFailed extends Error {
  override readonly name: string = 'ConditionFailed';
  constructor(
    /** The named transition whose guard did not hold, e.g. `takeOwnership`. */
    readonly transition: string,
    message = `${transition}: the item changed or is not in the expected state`,
  ) {
    super(message);
  }
}

/** No item of that kind has that id. */
export class NotFound extends Error {
  override readonly name: string = 'NotFound';
  constructor(
    readonly what: string,
    readonly id: string,
  ) {
    super(`${what} ${id} not found`);
  }
}

/** The caller's input cannot be acted on (e.g. a cursor this API never returned). */
export class InvalidInput extends Error {
  override readonly name: string = 'InvalidInput';
}

/** Stored data does not have the shape it must have. */
export class Corrupt extends Error {
  override readonly name: string = 'Corrupt';
}

/** The item is in a state that rules the request out. */
export class Conflict extends Error {
  override readonly name: string = 'Conflict';
}
