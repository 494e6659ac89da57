// The CLI from any directory: global options before the subcommand, the cluster found by walking
// up or through the user config, errors that say what was looked for, and a closed pipe that is
// not an error.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, startApiServer } from '../../functions/api/server.ts';
import { aNode, aVm } from '../api/support.ts';
import { freshStores } from '../support/stores.ts';
import { CLI, scratchDir, seesaw } from './support.ts';

const TOKEN = 'anywhere-token';

describe('the CLI outside the cluster folder', () => {
  let server: ApiServer;
  let root: string;
  beforeAll(async () => {
    const clients = await freshStores();
    await aNode(clients, 'n1', { vms: { 'vm-1': 1 } });
    await aVm(clients, 'vm-1', 'n1');
    server = await startApiServer({ clients, token: TOKEN, port: 0 });
    // A project folder as `npm start` leaves it.
    root = scratchDir('seesaw-project-');
    mkdirSync(join(root, '.seesaw'));
    writeFileSync(join(root, '.seesaw', 'endpoints.json'), JSON.stringify({ api: server.url }));
    writeFileSync(join(root, '.seesaw', 'token'), `${TOKEN}\n`);
  });
  afterAll(() => server.close());

  it('finds .seesaw from a subdirectory', async () => {
    const deep = join(root, 'src', 'deep');
    mkdirSync(deep, { recursive: true });
    const out = await seesaw(['vm', 'ls', '--json'], { cwd: deep });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout).map((vm: { id: string }) => vm.id)).toEqual(['vm-1']);
  });

  it('takes --data before the subcommand, from an unrelated directory', async () => {
    const out = await seesaw(['--data', join(root, '.seesaw'), 'cluster', '--json']);
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout).nodes.total).toBe(1);
    const after = await seesaw(['cluster', '--json', '--data', join(root, '.seesaw')]);
    expect(JSON.parse(after.stdout).nodes.total).toBe(1);
  });

  it('takes --api and --token before the subcommand too', async () => {
    const out = await seesaw(['--api', server.url, '--token', TOKEN, 'nodes', 'ls', '--json']);
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout).map((n: { id: string }) => n.id)).toEqual(['n1']);
  });

  it('finds the cluster that the user config names', async () => {
    const config = scratchDir('seesaw-config-');
    mkdirSync(join(config, 'seesaw'));
    writeFileSync(join(config, 'seesaw', 'config.json'), JSON.stringify({ data: join(root, '.seesaw') }));
    const out = await seesaw(['vm', 'show', 'vm-1', '--json'], { env: { XDG_CONFIG_HOME: config } });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout).owner).toBe('n1');
  });

  it('says what it looked for, and where, when it finds no cluster', async () => {
    const cwd = scratchDir();
    const out = await seesaw(['cluster'], { cwd });
    expect(out.code).toBe(1);
    expect(out.stdout).toBe('');
    const lines = out.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`no .seesaw in ${cwd} or any parent`);
    expect(lines[0]).toContain('SEESAW_DATA is not set');
    expect(lines[0]).toMatch(/no \/\S+\/seesaw\/config\.json/);
    expect(lines[0]).toContain('start one with `npm start`');
  });

  it('prints the package version with --version', async () => {
    const { version } = (await import('../../package.json', { with: { type: 'json' } })).default;
    const out = await seesaw(['--version']);
    expect(out.stdout.trim()).toBe(version);
    expect(out.code).toBe(0);
  });
});

describe('a closed pipe', () => {
  let server: Server;
  let api: string;
  beforeAll(async () => {
    // A long listing: far more than a pipe buffer holds, so the CLI is still writing when `head` exits.
    const items = Array.from({ length: 4000 }, (_, i) => ({
      id: `vm-${String(i).padStart(5, '0')}`,
      owner: 'n1',
      state: 'RUNNING',
      guest: { kind: 'cpu' },
      load: 0.25,
      targetLoad: null,
      memPages: 16,
      pinned: false,
      group: null,
      migration: null,
    }));
    server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ items, next: null }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('ends `seesaw vm ls | head -3` quietly with exit 0', async () => {
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(
        'bash',
        ['-c', `set -o pipefail; "${process.execPath}" "${CLI}" vm ls --api ${api} --token t | head -3`],
        { env: { ...process.env, SEESAW_API: '', SEESAW_TOKEN: '' } },
        (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n').filter(Boolean)).toHaveLength(3);
  });
});
