// The samples in docs/cli.md against the real CLI: a local cluster started with `seesaw up`, found
// from another directory through the user config it writes, driven through a short scenario. Each
// sample (a fenced block after `<!-- sample: ARGS -->`) must come from a command of the scenario,
// every line of it must have a line of the same shape in the real output (same columns, same
// words, numbers where numbers are, percentages where percentages are, short ids where short ids
// are), and both must fit 100 columns. So a sample cannot drift from what the CLI prints.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, scratchDir, seesaw } from './support.ts';

/** `<!-- sample: ARGS -->` then a fenced block: the documented output of `seesaw ARGS`. */
function docSamples(markdown: string): { args: string; lines: string[] }[] {
  const out: { args: string; lines: string[] }[] = [];
  const re = /<!-- sample: (.+?) -->\n```[a-z]*\n([\s\S]*?)```/g;
  for (let m = re.exec(markdown); m; m = re.exec(markdown))
    out.push({ args: (m[1] ?? '').trim(), lines: (m[2] ?? '').replace(/\n$/, '').split('\n') });
  return out;
}

/** A line with its values abstracted: what must stay the same between a sample and real output. */
function shape(line: string): string {
  return line
    .trim()
    .split(/\s+/)
    .map((t) => {
      if (/^\d\d:\d\d:\d\dZ$|^\d\d-\d\dT\d\d:\d\dZ$|^\d{4}-\d\d-\d\dT[\d:.]+Z:?$/.test(t)) return 'TIME';
      if (/^-?\d+(\.\d+)?%,?$/.test(t)) return 'PCT';
      if (/^-?\d+(\.\d+)?[,:)]?$/.test(t)) return 'NUM';
      if (/^#+$/.test(t)) return 'BAR';
      if (/^run-/.test(t)) return t.length <= 17 ? 'RUN' : 'LONG-RUN';
      if (/\d/.test(t)) return 'ID';
      return t;
    })
    .join(' ');
}

const DOC = readFileSync('docs/cli.md', 'utf8');

describe('the samples in docs/cli.md', () => {
  const cwd = scratchDir('seesaw-elsewhere-');
  const config = scratchDir('seesaw-config-');
  const project = scratchDir('seesaw-project-');
  const outputs = new Map<string, string[]>();
  let up: ChildProcess;
  let upOutput = '';
  const env = { XDG_CONFIG_HOME: config, SEESAW_LEASE_MS: '6000', SEESAW_REPORT_MS: '500' };

  const run = async (args: string, as = args) => {
    const out = await seesaw(args.split(' '), { cwd, env });
    if (out.code !== 0)
      throw new Error(`seesaw ${args} failed: ${out.stderr}\n--- seesaw up said:\n${upOutput}`);
    outputs.set(as, out.stdout.replace(/\n$/, '').split('\n'));
    return out.stdout;
  };
  const json = async <T>(args: string): Promise<T> =>
    JSON.parse((await seesaw([...args.split(' '), '--json'], { cwd, env })).stdout || 'null') as T;
  const until = async <T>(what: string, probe: () => Promise<T | undefined>, ms = 90_000): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe().catch(() => undefined);
      if (value !== undefined) return value;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}\n--- seesaw up said:\n${upOutput}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  type Vm = { id: string; owner: string; state: string; load: number | null; migration: unknown };
  const settled = (count: number) => async () => {
    const vms = await json<Vm[]>('vm ls');
    return vms.length === count && vms.every((v) => v.state === 'RUNNING' && v.load !== null && !v.migration)
      ? vms
      : undefined;
  };

  beforeAll(async () => {
    // The balancer runs only when asked (--interval is an hour), so the scenario decides every move.
    up = spawn(
      process.execPath,
      [CLI, 'up', '--port', '0', '--nodes', '2', '--vms', '0', '--interval', '3600'],
      { cwd: project, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    up.stdout?.on('data', (d: Buffer) => {
      upOutput += d.toString();
    });
    up.stderr?.on('data', (d: Buffer) => {
      upOutput += d.toString();
    });
    await until('the cluster', async () => (/Ctrl-C stops everything/.test(upOutput) ? true : undefined));
    await until('two live nodes', async () => {
      const nodes = await json<{ live: boolean }[]>('nodes ls');
      return nodes.filter((n) => n.live).length === 2 ? true : undefined;
    });

    // No cooldown: the scenario moves VMs right after creating and moving them.
    const endpoints = JSON.parse(readFileSync(join(project, '.seesaw', 'endpoints.json'), 'utf8'));
    const token = readFileSync(join(project, '.seesaw', 'token'), 'utf8').trim();
    const put = await fetch(`${endpoints.api}/v1/config/balancing`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cooldownMs: 0 }),
    });
    expect(put.status).toBe(200);
    // Three busy VMs and one light one, all on node-1; from here on, only the user config finds the cluster.
    await run('vm create --guest cpu --node node-1', 'vm create --guest cpu');
    for (const guest of ['cpu', 'memory', 'idle']) await run(`vm create --guest ${guest} --node node-1`);
    await until('four running VMs with loads', settled(4));
    await new Promise((r) => setTimeout(r, 1500)); // a report or two more, for steadier loads
    await run('cluster');
    await run('vm ls');
    await run('nodes ls');
    await run('balance --dry-run');
    await run('balance');
    const moved = await until('the balancer’s moves done', settled(4));
    const back = moved.find((v) => v.owner === 'node-2');
    if (!back) throw new Error(`the balancer moved nothing to node-2\n${JSON.stringify(moved)}`);
    await run(`vm migrate ${back.id} --to node-1`, 'vm migrate ID --to node-1');
    await until('the migration back done', settled(4));
    await run('runs');
    await run('migrations');
    const [last] = await json<{ id: string }[]>('runs');
    await run(`runs ${last?.id.slice(4, 11)}`, 'runs ID');
    // The real outputs in sample form, to paste into docs/cli.md when the CLI's output changes.
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync(
      'test-artifacts/cli-samples.md',
      [...outputs]
        .map(([args, lines]) => `<!-- sample: ${args} -->\n\`\`\`\n${lines.join('\n')}\n\`\`\`\n`)
        .join('\n'),
    );
  }, 240_000);

  afterAll(async () => {
    if (up && up.exitCode === null) {
      const exited = new Promise((r) => up.once('exit', r));
      up.kill('SIGINT');
      await exited;
    }
  }, 60_000);

  const samples = docSamples(DOC);

  it('are there, one per command of the first session', () => {
    expect(samples.map((s) => s.args).sort()).toEqual(
      [
        'vm create --guest cpu',
        'cluster',
        'vm ls',
        'nodes ls',
        'balance --dry-run',
        'vm migrate ID --to node-1',
        'runs',
        'runs ID',
        'migrations',
      ].sort(),
    );
  });

  for (const sample of samples)
    it(`match the real output of seesaw ${sample.args}`, () => {
      const real = outputs.get(sample.args);
      expect(real, `the scenario runs no "seesaw ${sample.args}"`).toBeDefined();
      const shapes = new Set((real ?? []).map(shape));
      for (const line of sample.lines) {
        expect(line.length, `sample line wider than 100 columns: ${line}`).toBeLessThanOrEqual(100);
        if (line.trim())
          expect(
            shapes.has(shape(line)),
            `no line shaped like\n  ${line}\n  (${shape(line)})\nin the real output:\n${real?.join('\n')}`,
          ).toBe(true);
      }
      for (const line of real ?? []) expect(line.length, line).toBeLessThanOrEqual(100);
    });

  it('`seesaw up` told the user config where the cluster is', () => {
    const saved = JSON.parse(readFileSync(join(config, 'seesaw', 'config.json'), 'utf8'));
    expect(saved).toMatchObject({ data: join(project, '.seesaw') });
    expect(saved.api).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe('the shape of a line', () => {
  it('keeps words and abstracts values, telling percentages, short and long run ids apart', () => {
    expect(shape('imbalance  CV 45.2%, max/mean 1.6 (mean load 0.72)')).toBe(
      'imbalance CV PCT max/mean NUM (mean load NUM',
    );
    expect(shape('imbalance  CV 0.452, max/mean 1.6 (mean load 0.72)')).not.toBe(
      shape('imbalance  CV 45.2%, max/mean 1.6 (mean load 0.72)'),
    );
    expect(shape('run-0mx3oc4  19:41:42Z')).toBe('RUN TIME');
    expect(shape('run-0mx3npz1c-s0-ca1e3fa5  2026-11-30T19:24:28.704Z')).toBe('LONG-RUN TIME');
  });

  it('reads samples from the markdown', () => {
    expect(docSamples('x\n<!-- sample: runs -->\n```\nA  B\n1  2\n```\n')).toEqual([
      { args: 'runs', lines: ['A  B', '1  2'] },
    ]);
  });
});
