// One cluster per data directory: the lock names a live holder, and a dead holder's lock is taken over.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeEndpoints } from '../../bin/local/cluster.ts';
import { acquireClusterLock, ClusterRunning } from '../../bin/local/lock.ts';

describe('the local cluster lock', () => {
  const dirs: string[] = [];
  const aDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-lock-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second start while the holder lives, naming its pid and API port and how to stop it', () => {
    const dir = aDir();
    // This test process is the live holder; the second start claims to be another pid.
    const lock = acquireClusterLock(dir);
    lock.update('http://127.0.0.1:8799');
    let error: unknown;
    try {
      acquireClusterLock(dir, process.pid + 100_000);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ClusterRunning);
    expect((error as Error).message).toBe(
      `a cluster is already running from ${dir}: pid ${process.pid}, API port 8799 (http://127.0.0.1:8799). ` +
        `Stop it with Ctrl-C in its terminal (or kill ${process.pid}), or use another --data directory.`,
    );
    lock.release();
    acquireClusterLock(dir, process.pid + 100_000).release();
  });

  it('takes over the lock of a cluster that died without releasing it', () => {
    const dir = aDir();
    // A pid that surely is not running: a child that has already exited.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(
      join(dir, 'cluster.lock'),
      JSON.stringify({ pid: gone, startedAt: 1, api: 'http://127.0.0.1:1' }),
    );
    const lock = acquireClusterLock(dir);
    expect(JSON.parse(readFileSync(join(dir, 'cluster.lock'), 'utf8')).pid).toBe(process.pid);
    expect(statSync(join(dir, 'cluster.lock')).mode & 0o777).toBe(0o600);
    lock.release();
  });

  it('writes endpoints.json at mode 0600 without the token, narrowing an older, wider file', () => {
    const dir = aDir();
    writeFileSync(join(dir, 'endpoints.json'), '{}', { mode: 0o644 });
    writeEndpoints(dir, {
      api: 'http://127.0.0.1:8787',
      dashboard: 'http://127.0.0.1:8787/',
      dynamodb: 'http://127.0.0.1:1',
      s3: 'http://127.0.0.1:2',
      table: 'seesaw',
      bucket: 'seesaw-images',
      region: 'us-east-1',
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    expect(statSync(join(dir, 'endpoints.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'endpoints.json'), 'utf8')).not.toMatch(/token/i);
  });
});
