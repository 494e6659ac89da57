// The bench's open-handle checks (bench/handles.ts): what a suite left open, and the watchdog that
// ends a run something still holds after its results are written.
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { armExitWatchdog, beyond, leftOpen, openResources } from '../../../bench/handles.ts';
import { withinLimit } from '../../../bench/index.ts';

const listening = async (): Promise<Server> => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
};
const closed = (server: Server) => new Promise((resolve) => server.close(resolve));

describe('open resources by type', () => {
  it('counts each type', () => {
    expect([...openResources(['Timeout', 'TCPServerWrap', 'Timeout'])]).toEqual([
      ['Timeout', 2],
      ['TCPServerWrap', 1],
    ]);
  });

  it('names what grew, with a count when more than one, and nothing that shrank or stayed', () => {
    const before = openResources(['Timeout', 'PipeWrap', 'PipeWrap']);
    const after = openResources(['TCPServerWrap', 'TCPServerWrap', 'Timeout', 'ProcessWrap', 'PipeWrap']);
    expect(beyond(before, after)).toEqual(['ProcessWrap', 'TCPServerWrap ×2']);
    expect(beyond(after, before)).toEqual(['PipeWrap']);
    expect(beyond(after, after)).toEqual([]);
  });
});

describe('what a suite left open', () => {
  it('reports a server opened since the snapshot and not closed', async () => {
    const before = openResources();
    const server = await listening();
    try {
      expect(await leftOpen(before, { settleMs: 100 })).toEqual(['TCPServerWrap']);
    } finally {
      await closed(server);
    }
    expect(await leftOpen(before, { settleMs: 1_000 })).toEqual([]);
  });

  it('waits for a handle that closes within the settling time instead of calling it a leak', async () => {
    const before = openResources();
    const server = await listening();
    setTimeout(() => server.close(), 150);
    expect(await leftOpen(before, { settleMs: 2_000, pollMs: 20 })).toEqual([]);
  });

  it("does not count an unref'd server, which cannot keep the process alive", async () => {
    const before = openResources();
    const server = await listening();
    server.unref();
    try {
      expect(await leftOpen(before, { settleMs: 50 })).toEqual([]);
    } finally {
      await closed(server);
    }
  });
});

describe('the exit watchdog', () => {
  it("names what holds the process and exits with code 1, on an unref'd timer", async () => {
    const lines: string[] = [];
    const codes: number[] = [];
    const fired = new Promise<void>((resolve) => {
      const timer = armExitWatchdog({
        graceMs: 20,
        report: (line) => lines.push(line),
        exit: (code) => {
          codes.push(code);
          resolve();
        },
        since: openResources(['PipeWrap', 'TCPServerWrap']),
        open: () =>
          openResources(['PipeWrap', 'TCPServerWrap', 'ProcessWrap', 'TCPServerWrap', 'TCPServerWrap']),
      });
      expect(timer.hasRef()).toBe(false);
    });
    await fired;
    expect(codes).toEqual([1]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('held by: ProcessWrap, TCPServerWrap ×2');
  });

  // The same in a process of its own: the unref'd timer must not keep a clean run alive, and must
  // end one that a server holds.
  const script = (holdServer: boolean, graceMs: number) => `
    import { createServer } from 'node:http';
    import { armExitWatchdog, openResources } from ${JSON.stringify(join(process.cwd(), 'bench', 'handles.ts'))};
    const since = openResources();
    ${holdServer ? "createServer().listen(0, '127.0.0.1');" : ''}
    armExitWatchdog({ since, graceMs: ${graceMs} });
  `;
  const run = (source: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('lets a process with nothing open end at once, with code 0', () => {
    const started = performance.now();
    const child = run(script(false, 120_000));
    expect(child.status).toBe(0);
    expect(child.stderr).not.toContain('still running');
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it('ends a process a listening server holds, with code 1, naming the server', () => {
    const child = run(script(true, 300));
    expect(child.status).toBe(1);
    expect(child.stderr).toContain(
      'still running 0.3 s after the results were written, held by: TCPServerWrap. A suite did not close',
    );
  });
});

describe('the time limit on a suite', () => {
  it('gives the work when it finishes in time', async () => {
    await expect(withinLimit(Promise.resolve(7), 1_000)).resolves.toBe(7);
    await expect(withinLimit(Promise.reject(new Error('its own')), 1_000)).rejects.toThrow('its own');
  });

  it('rejects work that never finishes once the limit has passed', async () => {
    await expect(withinLimit(new Promise(() => {}), 50)).rejects.toThrow('did not finish within 0.05 s');
  });
});
