// `seesaw agent install --systemd`: the unit it writes passes `systemd-analyze verify` with no
// warning, restarts on failure, runs as a dedicated user with hardening, and starts this very CLI.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, type CliResult, scratchDir, seesaw } from './support.ts';

function analyze(args: string[]): Promise<CliResult> {
  return new Promise((done) =>
    execFile('systemd-analyze', args, { timeout: 30_000 }, (error, stdout, stderr) =>
      done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

const UNIT = 'seesaw-agent.service';
/** `seesaw agent install --systemd` with these flags. */
const installSystemd = (flags: string[]) => seesaw(['agent', 'install', '--systemd', ...flags]);

describe('seesaw agent install --systemd', () => {
  it('writes a unit that systemd-analyze verifies without a warning', async () => {
    const dir = scratchDir('seesaw-unit-');
    const out = await installSystemd([
      '--dir',
      dir,
      '--node',
      'i-0abc123',
      '--',
      '--labels',
      'zone=eu west 1a',
      '--log-level',
      'warn',
    ]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout.split('\n')[0]).toBe(`wrote ${join(dir, UNIT)}`);
    const verify = await analyze(['verify', join(dir, UNIT)]);
    expect(verify.stderr).toBe('');
    expect(verify.code).toBe(0);

    const unit = readFileSync(join(dir, UNIT), 'utf8');
    const exec = /\nExecStart=(\S+) (\S+) (.*)\n/.exec(unit);
    expect(exec?.[1]).toBe(process.execPath);
    // This CLI: the sources' entry, or the bundle's when bin/seesaw.js ran a fresh dist/.
    expect([CLI, resolve('dist/seesaw.js')]).toContain(exec?.[2]);
    expect(exec?.[3]).toBe('agent --node i-0abc123 --labels "zone=eu west 1a" --log-level warn');
    for (const line of [
      'Restart=on-failure',
      'User=seesaw',
      'Group=seesaw',
      'EnvironmentFile=-/etc/seesaw/agent.env',
      'NoNewPrivileges=yes',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'CapabilityBoundingSet=',
      'WantedBy=multi-user.target',
    ])
      expect(unit.split('\n'), line).toContain(line);
  });

  it("rates the unit's exposure as low in systemd's own security analysis", async () => {
    const dir = scratchDir('seesaw-unit-');
    await installSystemd(['--dir', dir]);
    const security = await analyze(['security', '--offline=true', join(dir, UNIT)]);
    const level = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout)?.[1]);
    expect(level).toBeGreaterThan(0);
    expect(level).toBeLessThan(3);
  });

  it('fails verification for a unit whose node binary does not exist, so the check above can fail', async () => {
    const dir = scratchDir('seesaw-unit-');
    await installSystemd(['--dir', dir, '--node-path', '/nonexistent/node']);
    const verify = await analyze(['verify', join(dir, UNIT)]);
    expect(verify.code).not.toBe(0);
    expect(verify.stderr).toContain('/nonexistent/node');
  });

  it('prints the unit with --print and writes nothing', async () => {
    const dir = scratchDir('seesaw-unit-');
    const out = await installSystemd(['--print', '--dir', dir, '--user', 'agent']);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^# Written by `seesaw agent install --systemd`\.\n\[Unit\]/);
    expect(out.stdout).toContain('\nUser=agent\n');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('names the environment file with --environment-file, and refuses --env-file (a flag Node reads itself)', async () => {
    const dir = scratchDir('seesaw-unit-');
    const named = await installSystemd(['--print', '--environment-file', '/etc/seesaw/other.env']);
    expect(named.code).toBe(0);
    expect(named.stdout.split('\n')).toContain('EnvironmentFile=-/etc/seesaw/other.env');
    // An existing file, so that Node itself gets past its own reading of --env-file.
    const envFile = join(dir, 'agent.env');
    writeFileSync(envFile, '');
    const old = await installSystemd(['--dir', dir, '--env-file', envFile]);
    expect(old.code).toBe(1);
    expect(old.stderr).toContain('use --environment-file');
    expect(readdirSync(dir)).toEqual(['agent.env']);
  });

  it('refuses to guess the installer and refuses relative paths', async () => {
    const dir = scratchDir('seesaw-unit-');
    const none = await seesaw(['agent', 'install', '--dir', dir]);
    expect(none.code).toBe(1);
    expect(none.stderr.trim()).toBe('seesaw: say how to install: --systemd (the only installer so far)');
    const relative = await installSystemd(['--dir', dir, '--entry', 'dist/seesaw.js']);
    expect(relative.code).toBe(1);
    expect(relative.stderr.trim()).toBe('seesaw: --entry must be an absolute path, got "dist/seesaw.js"');
    expect(existsSync(join(dir, UNIT))).toBe(false);
  });
});
