// `seesaw up` as a child process for the browser tests: started with the caller's flags, handed
// back once it prints its dashboard URL, and stopped the way a user stops it (Ctrl-C).
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeesawUp {
  child: ChildProcess;
  dashboard: string;
}

/** Starts `seesaw up --data dataDir …args` and resolves with the dashboard URL it prints. */
export function startSeesawUp(args: string[], dataDir: string): Promise<SeesawUp> {
  const child = spawn(process.execPath, ['bin/seesaw.js', 'up', '--data', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SEESAW_TOKEN: '' },
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`seesaw up printed no dashboard URL:\n${output}`)),
      90_000,
    );
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /^dashboard\s+(\S+)/m.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve({ child, dashboard: match[1] });
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`seesaw up exited (${code}) before printing a dashboard URL:\n${output}`));
    });
  });
}

/** Interrupts `seesaw up` and waits until it has exited. */
export async function stopSeesawUp(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  await exited;
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
