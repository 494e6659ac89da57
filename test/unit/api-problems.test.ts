// The one mapping from typed errors (shared/errors.ts) to HTTP problems: matched by class, not
// by a name string, so a look-alike error is a 500 and a subclass keeps its parent's status.
import { describe, expect, it } from 'vitest';
import { toProblem } from '../../functions/api/problem.ts';
import { ConditionFailed, Conflict, Corrupt, InvalidInput, NotFound } from '../../shared/errors.ts';
import { InvalidCursor } from '../../shared/storage/table.ts';

describe('toProblem', () => {
  it('maps each typed error to its status and slug', () => {
    const cases: [Error, number, string][] = [
      [new NotFound('vm', 'vm-1'), 404, 'not-found'],
      [new ConditionFailed('takeOwnership'), 409, 'conflict'],
      [new Conflict('vm vm-1 is pinned'), 409, 'conflict'],
      [new InvalidInput('bad'), 400, 'bad-request'],
      [new InvalidCursor(), 400, 'bad-request'],
      [new Corrupt('manifest'), 500, 'internal'],
    ];
    for (const [error, status, slug] of cases)
      expect({ status: toProblem(error).status, slug: toProblem(error).slug }, error.name).toEqual({
        status,
        slug,
      });
  });

  it('keeps the message of a storage error and says nothing changed on a failed condition', () => {
    expect(toProblem(new NotFound('node', 'n9')).detail).toBe('node n9 not found');
    expect(toProblem(new ConditionFailed('patchVm')).detail).toBe(
      'patchVm: the item changed or is not in the expected state; nothing was changed — read the item again and retry',
    );
  });

  it('treats an error that only borrows a typed name as an internal error, hiding its message', () => {
    for (const name of ['NotFound', 'ConditionFailed', 'Conflict', 'InvalidInput']) {
      const lookalike = Object.assign(new Error('secret detail'), { name });
      const problem = toProblem(lookalike);
      expect(problem.status, name).toBe(500);
      expect(problem.detail).not.toContain('secret');
    }
  });
});
