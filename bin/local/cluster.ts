// The whole cluster on one machine: dynalite and s3rver, the API, the balancer and the reaper on
// intervals (the same handlers' logic that EventBridge Scheduler invokes on AWS), and one agent
// process per node. Data lives under one directory, so the next start resumes the same cluster.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { discover, jwtCheck } from '../../functions/api/operator-auth.ts';
import { startApiServer } from '../../functions/api/server.ts';
import { startBalancerLoop } from '../../functions/balancer/loop.ts';
import { type BalancerDeps, runBalancer } from '../../functions/balancer/run.ts';
import { runReaper } from '../../functions/reaper/reaper.ts';
import { isLive } from '../../shared/domain/placement.ts';
import { createRng } from '../../shared/domain/rng.ts';
import {
  ensureTableAndBucket,
  LOCAL_CREDENTIALS,
  localClients,
  startLocalStores,
} from '../../shared/local/stores.ts';
import { repeatEvery } from '../../shared/runtime/timer.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { createImageStore, type ImageStore } from '../../shared/storage/image-store.ts';
import { listNodes } from '../../shared/storage/nodes.ts';
import type { RunRecord } from '../../shared/storage/runs.ts';
import { createVm, listAllVms } from '../../shared/storage/vms.ts';
import { createClient } from '../client.ts';
import { CLI_ENTRY as CLI } from '../self.ts';
import { type DemoNode, demoNodes, demoVms } from './demo.ts';
import { acquireClusterLock } from './lock.ts';

export interface LocalClusterOptions {
  dataDir: string;
  nodes: number;
  /** Demo VMs launched on the first start (0 for none). */
  vms: number;
  /** API port; 0 picks a free one. */
  port: number;
  dynamoPort: number;
  s3Port: number;
  /** Balancer interval in ms. */
  intervalMs: number;
  /** Wipe the data directory first. */
  reset: boolean;
  /** Where progress lines go (a line per balancing round, agent exits). */
  say: (line: string) => void;
  /** Extra environment for the agent processes (tests shorten periods with it). */
  agentEnv?: Record<string, string>;
  /** `--qemu`: agents offer the qemu driver too, and one demo VM is a real x86 guest (qemu:counter). */
  qemu?: boolean;
  /** `--oidc`: the dashboard signs in through this provider and calls /ui/v1 with its JWTs. */
  oidc?: { issuer: string; clientId: string };
}

export interface LocalCluster {
  apiUrl: string;
  token: string;
  clients: Clients;
  endpoints: Endpoints;
  stop(): Promise<void>;
}

export interface Endpoints {
  api: string;
  dashboard: string;
  dynamodb: string;
  s3: string;
  table: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** The API token: SEESAW_TOKEN, else DIR/token, created (mode 0600) on first start. */
export function loadOrCreateToken(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.SEESAW_TOKEN) return env.SEESAW_TOKEN;
  const file = join(dataDir, 'token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/** DIR/endpoints.json: where the stores and the API listen (never the token, which has its own file); mode 0600. */
export function writeEndpoints(dataDir: string, endpoints: Endpoints) {
  const file = join(dataDir, 'endpoints.json');
  writeFileSync(file, `${JSON.stringify(endpoints, null, 2)}\n`, { mode: 0o600 });
  // The mode above applies only when the file is created; a file from an older start is narrowed too.
  chmodSync(file, 0o600);
}

/** Takes the data dir's lock (before --reset: a running cluster's files are not ours to touch). */
function lockDataDir(dataDir: string, reset: boolean | undefined) {
  mkdirSync(dataDir, { recursive: true });
  const lock = acquireClusterLock(dataDir);
  if (!reset) return lock;
  lock.release();
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  return acquireClusterLock(dataDir);
}

/** The API server, with sign-in through the issuer when `oidc` is given (as the stack's JWT authorizer does). */
async function startApi(
  options: LocalClusterOptions,
  deps: { clients: Clients; token: string; balancerDeps: BalancerDeps; log: pino.Logger },
) {
  const { clients, token, balancerDeps, log } = deps;
  const oidc = options.oidc && (await discover(options.oidc.issuer, options.oidc.clientId));
  return startApiServer({
    clients,
    token,
    ...(oidc && options.oidc
      ? {
          auth: {
            mode: 'token' as const,
            token,
            jwt: jwtCheck({
              issuer: options.oidc.issuer,
              audience: options.oidc.clientId,
              jwksUri: oidc.jwksUri,
            }),
          },
          signIn: oidc.signIn,
        }
      : {}),
    port: options.port,
    runBalancer: ({ dryRun }) => runBalancer(balancerDeps, { dryRun, roundMs: options.intervalMs }),
    logError: (error) => log.error({ err: error }, 'api error'),
  });
}

/** The demo VMs, on a cluster that has none yet. */
async function launchDemoVms(
  clients: Clients,
  nodes: DemoNode[],
  options: LocalClusterOptions,
  api: () => ReturnType<typeof createClient>,
) {
  if (options.vms <= 0 || (await listAllVms(clients)).length > 0) return;
  const now = Date.now();
  for (const vm of demoVms(options.vms, nodes)) await createVm(clients, vm, now);
  options.say(`launched ${options.vms} demo VMs, most of them on ${nodes[0]?.id}`);
  if (!options.qemu) return;
  // Through the API, as a user would: it checks the image and places the VM on a qemu node.
  await api()
    .createVm({ guest: 'qemu:counter', memPages: 256, node: nodes[0]!.id })
    .then((vm) => options.say(`launched ${vm.id}, a real x86 VM under QEMU (qemu:counter), on ${vm.owner}`))
    .catch((error: Error) => options.say(`could not launch the x86 VM: ${error.message}`));
}

/** The balancer and the reaper, each every interval; the stops, in the order they started. */
function startLoops(options: LocalClusterOptions, balancerDeps: BalancerDeps, images: ImageStore) {
  const { clients, clock, log } = balancerDeps;
  const balancer = startBalancerLoop(balancerDeps, {
    intervalMs: options.intervalMs,
    onRun: (record) => options.say(roundLine(record)),
  });
  const reaper = repeatEvery(options.intervalMs, async () => {
    const report = await runReaper({ clients, clock, log, images });
    for (const r of report.restarted) options.say(`reaper: ${r.vm} restarted on ${r.to} (${r.from} is dead)`);
  });
  return [() => balancer.stop(), () => reaper.stop()];
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const dataDir = resolve(options.dataDir);
  const lock = lockDataDir(dataDir, options.reset);
  const log = pino(
    { level: process.env.LOG_LEVEL ?? 'warn' },
    pino.destination(join(dataDir, 'control-plane.log')),
  );

  let stores: Awaited<ReturnType<typeof startLocalStores>>;
  try {
    stores = await startLocalStores({ dataDir, dynamoPort: options.dynamoPort, s3Port: options.s3Port });
  } catch (error) {
    lock.release();
    throw error;
  }
  const cleanups: (() => Promise<unknown>)[] = [async () => lock.release(), () => stores.close()];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const clients = localClients(stores);
    await ensureTableAndBucket(clients);
    const token = loadOrCreateToken(dataDir);
    const clock = Date.now;
    const balancerDeps = { clients, clock, rng: createRng(clock()), log };

    const api = await startApi(options, { clients, token, balancerDeps, log });
    cleanups.push(() => api.close());

    const endpoints: Endpoints = {
      api: api.url,
      // No token here: it lives in DIR/token (0600) alone.
      dashboard: `${api.url}/`,
      dynamodb: stores.dynamoEndpoint,
      s3: stores.s3Endpoint,
      table: clients.tableName,
      bucket: clients.bucketName,
      region: 'us-east-1',
      credentials: { ...LOCAL_CREDENTIALS },
    };
    writeEndpoints(dataDir, endpoints);
    lock.update(api.url);

    const nodes = demoNodes(options.nodes);
    const agents = nodes.map((node) => spawnAgent(node, dataDir, options));
    cleanups.push(() => stopAgents(agents));
    await waitForNodes(
      clients,
      nodes.map((n) => n.id),
      clock,
      options.say,
    );
    await launchDemoVms(clients, nodes, options, () =>
      createClient({ api: endpoints.api, via: 'seesaw up', auth: 'token', token }),
    );
    cleanups.push(...startLoops(options, balancerDeps, createImageStore(clients)));

    return { apiUrl: api.url, token, clients, endpoints, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

function spawnAgent(node: DemoNode, dataDir: string, options: LocalClusterOptions): ChildProcess {
  const weights = Object.entries(node.weights)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const labels = Object.entries(node.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const child = spawn(
    process.execPath,
    [
      CLI,
      'agent',
      '--node',
      node.id,
      '--capacity',
      String(node.capacity),
      '--weights',
      weights,
      '--labels',
      labels,
      '--data',
      dataDir,
    ],
    {
      env: {
        ...process.env,
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        ...(options.qemu ? { SEESAW_QEMU: '1' } : {}),
        ...options.agentEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logFile = join(dataDir, `${node.id}.log`);
  const append = (chunk: Buffer) => writeFileSync(logFile, chunk, { flag: 'a' });
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM')
      options.say(`agent ${node.id} exited (${signal ?? code}); see ${logFile}`);
  });
  return child;
}

/** Waits until every agent has registered and holds a live lease, so demo VMs land on live nodes. */
async function waitForNodes(
  clients: Clients,
  ids: string[],
  clock: () => number,
  say: (line: string) => void,
) {
  const deadline = clock() + 180_000;
  let reported = -1;
  for (;;) {
    const now = clock();
    const live = (await listNodes(clients)).filter((n) => ids.includes(n.id) && isLive(n, now)).length;
    if (live === ids.length) return;
    if (live !== reported) say(`waiting for agents: ${live}/${ids.length} nodes live`);
    reported = live;
    if (now > deadline)
      throw new Error(`only ${live} of ${ids.length} agents came up within 180 s; see the node logs`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function stopAgents(agents: ChildProcess[]) {
  await Promise.all(
    agents.map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
          child.once('exit', () => {
            clearTimeout(force);
            done();
          });
          child.kill('SIGTERM');
        }),
    ),
  );
}

/** One short line per balancing round: imbalance, the paired nodes' loads, moves, and why idle pairs idled. */
export function roundLine(record: RunRecord): string {
  const loads = record.pairs
    .flatMap((p) => [
      { id: p.requester, load: p.loads.requester },
      { id: p.selected, load: p.loads.selected },
    ])
    .sort((a, b) => a.id.localeCompare(b.id))
    .map(({ id, load }) => `${id}=${load.toFixed(2)}`)
    .join(' ');
  const moves = record.orders
    .filter((o) => o.outcome === 'written')
    .map((o) => `${o.vm} ${o.from}→${o.to}`)
    .join(', ');
  const idle = Object.entries(record.reasons)
    .filter(([code]) => code !== 'moved')
    .map(([code, count]) => `${code}×${count}`)
    .join(' ');
  return [
    `round ${record.round}: CV ${(record.before.cv * 100).toFixed(1)}% over ${record.nodes.considered} nodes`,
    loads && `  ${loads}`,
    moves && `  moves: ${moves}`,
    idle && `  (${idle})`,
  ].join('');
}
