// IdIndex.of builds the index of a whole column of ids at once, inserting them out of order: it must
// number them as adding them in order does, and name every later copy of an id.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdIndex } from '../../../shared/domain/id-index.ts';

/** Positions as a Map of first sightings numbers them, and each later sighting with its first. */
function firstSightings(ids: readonly string[]) {
  const first = new Map<string, number>();
  const twins: { at: number; first: number }[] = [];
  ids.forEach((id, at) => {
    const seen = first.get(id);
    if (seen === undefined) first.set(id, at);
    else twins.push({ at, first: seen });
  });
  return { first, twins };
}

describe('IdIndex.of', () => {
  it('finds each id at its first position and lists every later copy, in position order', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 4 }), { maxLength: 600 }), (ids) => {
        const { index, twins } = IdIndex.of([...ids], ids.length);
        const expected = firstSightings(ids);
        expect(twins).toEqual(expected.twins);
        for (const [id, at] of expected.first) expect(index.get(id)).toBe(at);
        expect(index.get('never listed')).toBe(-1);
      }),
    );
  });

  it('reads only the first `count` ids of the column', () => {
    const { index, twins } = IdIndex.of(['a', 'b', 'a', 'c'], 2);
    expect(twins).toEqual([]);
    expect([index.get('a'), index.get('b'), index.get('c')]).toEqual([0, 1, -1]);
  });

  it('keeps its numbers when more ids are added after it', () => {
    const ids = ['vm-0', 'vm-1', 'vm-0'];
    const { index } = IdIndex.of(ids, 3);
    expect(index.add('vm-2')).toBe(-1);
    expect(index.add('vm-1')).toBe(1);
    expect([index.get('vm-0'), index.get('vm-2')]).toEqual([0, 3]);
  });
});
