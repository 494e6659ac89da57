// The migration bench's node logger (bench/suites/_migration-node.ts): an agent in a child process
// sends the bench only the entries its phase log reads, so what it drops must be exactly the rest.
import { describe, expect, it } from 'vitest';
import { type LogEntry, loggerTo } from '../../../bench/suites/_migration-node.ts';

describe("the bench node's logger", () => {
  const sent = () => {
    const entries: LogEntry[] = [];
    return { entries, log: loggerTo((e) => entries.push(e)) };
  };

  it('passes on the three phase messages at info, and drops other info lines', () => {
    const { entries, log } = sent();
    log.info({ migration: 'm', phases: { encodeMs: 3 } }, 'image handed over');
    log.info({ migration: 'm', phases: { takeMs: 9 } }, 'migrated in');
    log.info({ migration: 'm', prepare: { woke: 'watch' } }, 'prepared for the final delta');
    log.info({ vm: 'v' }, 'vm started');
    log.info({ migration: 'm' });
    expect(entries.map((e) => [e.level, e.msg])).toEqual([
      ['info', 'image handed over'],
      ['info', 'migrated in'],
      ['info', 'prepared for the final delta'],
    ]);
    expect(entries[0]?.obj).toEqual({ migration: 'm', phases: { encodeMs: 3 } });
  });

  it("passes on the pre-copy's decision at debug, and no other debug line", () => {
    const { entries, log } = sent();
    log.debug({ migration: 'm', rounds: 1 }, 'pre-copy done (converged)');
    log.debug({ migration: 'm' }, 'pre-copy round');
    expect(entries.map((e) => e.msg)).toEqual(['pre-copy done (converged)']);
  });

  it('passes on every warning and error, with or without a message, stamped with its time', () => {
    const { entries, log } = sent();
    const before = Date.now();
    log.warn({ err: 'slow' }, 'heartbeat failed');
    log.error({ vm: 'v' });
    expect(entries.map((e) => e.level)).toEqual(['warn', 'error']);
    expect(entries[1]).not.toHaveProperty('msg');
    for (const e of entries) expect(e.at).toBeGreaterThanOrEqual(before);
  });
});
