// The built-in guests' param table matches what their WAT declares, and the range checks hold.
import { describe, expect, it } from 'vitest';
import { guestBinary } from '../../node-agent/guests/index.ts';
import { BUILTIN_GUESTS } from '../../shared/domain/guests.ts';
import { validateGuestModule } from '../../shared/guest-abi.ts';
import {
  BUILTIN_PARAM_RULES,
  checkMemPages,
  checkParams,
  moduleParamRules,
} from '../../shared/guest-params.ts';

describe('guest params', () => {
  it.each(BUILTIN_GUESTS)(
    'the %s guest declares exactly the params, with the wasm types, the table lists',
    async (kind) => {
      const checked = validateGuestModule(await guestBinary(kind));
      if (!checked.ok) throw new Error(checked.problems.join('; '));
      const fromWasm = moduleParamRules(checked.exports);
      const table = BUILTIN_PARAM_RULES[kind] ?? {};
      expect(Object.keys(table).sort()).toEqual(Object.keys(fromWasm).sort());
      for (const [name, rule] of Object.entries(table)) expect(rule.type, name).toBe(fromWasm[name]?.type);
    },
  );

  it('accepts the edges of an i32 and refuses one past them', () => {
    const rules = { n: { type: 'i32' as const } };
    expect(checkParams({ n: 2 ** 31 - 1 }, rules)).toEqual([]);
    expect(checkParams({ n: -(2 ** 31) }, rules)).toEqual([]);
    expect(checkParams({ n: 2 ** 31 }, rules)).toHaveLength(1);
    expect(checkParams({ n: -(2 ** 31) - 1 }, rules)).toHaveLength(1);
  });

  it('lets a rule narrow a type range but never widen it', () => {
    expect(checkParams({ n: 10 }, { n: { type: 'i32', min: 0, max: 9 } })).toHaveLength(1);
    expect(checkParams({ n: 2 ** 40 }, { n: { type: 'i32', max: 2 ** 50 } })).toHaveLength(1);
    expect(checkParams({ x: 1e39 }, { x: { type: 'f32' } })).toHaveLength(1);
    expect(checkParams({ x: 1e38 }, { x: { type: 'f32' } })).toEqual([]);
  });

  it('treats memPages between the declared minimum and maximum as fitting', () => {
    expect(checkMemPages(4, { initialPages: 4, maximumPages: 8 })).toEqual([]);
    expect(checkMemPages(8, { initialPages: 4, maximumPages: 8 })).toEqual([]);
    expect(checkMemPages(3, { initialPages: 4 })).toHaveLength(1);
    expect(checkMemPages(9, { initialPages: 4, maximumPages: 8 })).toHaveLength(1);
  });
});
