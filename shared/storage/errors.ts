// The typed errors live in shared/errors.ts; re-exported here for the storage modules.
export { ConditionFailed, Conflict, Corrupt, InvalidInput, NotFound } from '../errors.ts';

/** True when DynamoDB rejected a write because its condition expression did not hold. */
export function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
