// One cluster per data directory: `seesaw up` holds DIR/cluster.lock (pid, API) while it runs, and
// a second start in the same directory stops at once, naming the running cluster, before it
// touches the stores (dynalite's files cannot be shared between processes).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ClusterLockInfo {
  pid: number;
  startedAt: number;
  /** The API URL, once the API listens. */
  api?: string;
}

export interface ClusterLock {
  /** Records the API URL for the message a second start prints. */
  update(api: string): void;
  release(): void;
}

export class ClusterRunning extends Error {
  override readonly name = 'ClusterRunning';
  constructor(
    readonly dataDir: string,
    readonly holder: ClusterLockInfo,
  ) {
    const port = holder.api ? new URL(holder.api).port : undefined;
    super(
      `a cluster is already running from ${dataDir}: pid ${holder.pid}, ` +
        `${port ? `API port ${port} (${holder.api})` : 'API still starting'}. ` +
        `Stop it with Ctrl-C in its terminal (or kill ${holder.pid}), or use another --data directory.`,
    );
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes DIR/cluster.lock, or throws ClusterRunning when a live process holds it; a dead holder's lock is taken over. */
export function acquireClusterLock(dataDir: string, pid = process.pid, now = Date.now()): ClusterLock {
  const file = join(dataDir, 'cluster.lock');
  const info: ClusterLockInfo = { pid, startedAt: now };
  const write = (flag: 'wx' | 'w') => writeFileSync(file, `${JSON.stringify(info)}\n`, { flag, mode: 0o600 });
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      write('wx');
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
      let holder: ClusterLockInfo | undefined;
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as ClusterLockInfo;
      } catch {
        holder = undefined;
      }
      if (holder && Number.isInteger(holder.pid) && holder.pid !== pid && alive(holder.pid))
        throw new ClusterRunning(dataDir, holder);
      // Left behind by a cluster that died without cleaning up: take it over.
      rmSync(file, { force: true });
    }
  }
  return {
    update(api) {
      info.api = api;
      write('w');
    },
    release() {
      try {
        const now = JSON.parse(readFileSync(file, 'utf8')) as ClusterLockInfo;
        if (now.pid === pid) rmSync(file, { force: true });
      } catch {
        // already gone
      }
    },
  };
}
