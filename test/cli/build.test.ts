// The bundle (`npm run build`, run by `npm install`): ESM chunks plus the built-in guests, which
// run on their own once copied away from the repository and its node_modules, as on a host that
// gets only the bundle. Built into a scratch folder, so other tests' dist/ is left alone.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_GUESTS } from '../../shared/domain/guests.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { createVm, findVm } from '../../shared/storage/vms.ts';
import { freshStores, storeEnv } from '../support/stores.ts';
import { scratchDir, seesaw } from './support.ts';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the build in a checkout with only the agent’s sources (the AWS fleet’s asset)', () => {
  it('succeeds, and the bundle runs the agent commands and names the missing ones', async () => {
    const tree = scratchDir('seesaw-agent-tree-');
    for (const part of ['bin', 'node-agent', 'shared', 'package.json'])
      cpSync(part, join(tree, part), { recursive: true });
    symlinkSync(resolve('node_modules'), join(tree, 'node_modules'));
    execFileSync(process.execPath, ['bin/build.js'], { cwd: tree, stdio: 'pipe' });
    const entry = join(tree, 'dist', 'seesaw.js');
    expect((await seesaw(['--version'], { entry })).stdout.trim()).toBe(pkg.version);
    const unit = await seesaw(['agent', 'install', '--systemd', '--print'], { entry });
    expect(unit.stdout).toContain(`\nExecStart=${process.execPath} ${entry} agent\n`);
    const up = await seesaw(['up', '--port', '0'], { entry });
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(/^seesaw: Cannot find module '.*functions\/api\/.*\.ts'/);
  }, 120_000);
});

describe('the bundle', () => {
  let host: string;
  let entry: string;
  beforeAll(() => {
    const built = scratchDir('seesaw-dist-');
    const build = pathToFileURL(resolve('bin/build.js')).href;
    execFileSync(process.execPath, [
      '--input-type=module',
      '-e',
      `const { buildCli } = await import(${JSON.stringify(build)}); await buildCli({ outdir: ${JSON.stringify(built)}, quiet: true });`,
    ]);
    // A host with the bundle only: no repository, no node_modules anywhere above it.
    host = join(scratchDir('seesaw-host-'), 'opt', 'seesaw');
    cpSync(built, host, { recursive: true });
    entry = join(host, 'seesaw.js');
  }, 120_000);

  it('is ESM chunks with every built-in guest beside them, as WAT and as valid wasm', () => {
    const files = readdirSync(host);
    expect(JSON.parse(readFileSync(join(host, 'package.json'), 'utf8'))).toEqual({ type: 'module' });
    for (const guest of BUILTIN_GUESTS) {
      expect(files).toContain(`${guest}.wat`);
      expect(WebAssembly.validate(readFileSync(join(host, `${guest}.wasm`)))).toBe(true);
    }
    expect(files.filter((f) => f.endsWith('.js')).length).toBeGreaterThan(3);
  });

  it('prints the version and the help on its own', async () => {
    const version = await seesaw(['--version'], { entry });
    expect(version.stdout.trim()).toBe(pkg.version);
    const help = await seesaw(['--help'], { entry });
    expect(help.code).toBe(0);
    for (const command of ['up', 'agent', 'vm', 'nodes', 'balance', 'cluster', 'migrations'])
      expect(help.stdout).toMatch(new RegExp(`\\n  ${command} `));
  });

  it('writes a systemd unit that runs the bundle itself', async () => {
    const out = await seesaw(['agent', 'install', '--systemd', '--print', '--node', 'i-1'], { entry });
    expect(out.stdout).toContain(`\nExecStart=${process.execPath} ${entry} agent --node i-1\n`);
  });

  describe('as a node agent', () => {
    let clients: Clients;
    let agent: ChildProcess | undefined;
    const output: string[] = [];
    beforeAll(async () => {
      clients = await freshStores();
    });
    afterAll(async () => {
      if (agent && agent.exitCode === null) {
        const exited = new Promise((r) => agent?.once('exit', r));
        agent.kill('SIGTERM');
        await exited;
      }
    });

    it('registers its node and runs a built-in guest from the precompiled wasm', async () => {
      agent = spawn(
        process.execPath,
        [
          entry,
          'agent',
          '--node',
          'bundled',
          '--lease-ms',
          '4000',
          '--report-ms',
          '500',
          '--reconcile-ms',
          '100',
        ],
        { cwd: host, env: { ...process.env, ...storeEnv(clients) }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      agent.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
      agent.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
      await until('the node registered', () => getNode(clients, 'bundled'));
      await createVm(
        clients,
        { id: 'vm-b', owner: 'bundled', guest: { kind: 'cpu' }, memPages: 16 },
        Date.now(),
      );
      const vm = await until('the VM running', async () => {
        const found = await findVm(clients, 'vm-b');
        return found?.state === 'RUNNING' ? found : undefined;
      }).catch((error) => {
        throw new Error(`${(error as Error).message}; agent output:\n${output.join('')}`);
      });
      expect(vm.owner).toBe('bundled');
    });
  });
});
