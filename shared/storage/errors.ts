// Typed errors that callers act on; the API maps them to HTTP problems in one place.

export class ConditionFailed extends Error {
  override readonly name = 'ConditionFailed';
  constructor(
    /** The named transition whose guard did not hold, e.g. `takeOwnership`. */
    readonly transition: string,
    message = `${transition}: the item changed or is not in the expected state`,
  ) {
    super(message);
  }
}

export class NotFound extends Error {
  override readonly name = 'NotFound';
  constructor(
    readonly what: string,
    readonly id: string,
  ) {
    super(`${what} ${id} not found`);
  }
}

export class InvalidInput extends Error {
  override readonly name = 'InvalidInput';
}

export class Corrupt extends Error {
  override readonly name = 'Corrupt';
}

export class Conflict extends Error {
  override readonly name = 'Conflict';
}

/** True when DynamoDB rejected a write because its condition expression did not hold. */
export function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
