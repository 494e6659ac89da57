// Runs the real `seesaw` command in a child process, with an environment that cannot see the
// developer's cluster: no SEESAW_* variables, a private XDG_CONFIG_HOME, a scratch working directory.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CLI = resolve('bin/seesaw.js');

export const scratchDir = (prefix = 'seesaw-cli-') => mkdtempSync(join(tmpdir(), prefix));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function seesaw(
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; entry?: string } = {},
): Promise<CliResult> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [options.entry ?? CLI, ...args],
      {
        cwd: options.cwd ?? scratchDir(),
        env: {
          ...process.env,
          SEESAW_TOKEN: '',
          SEESAW_API: '',
          SEESAW_DATA: '',
          SEESAW_STACK: '',
          SEESAW_AUTH: '',
          XDG_CONFIG_HOME: scratchDir('seesaw-config-'),
          ...options.env,
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}
