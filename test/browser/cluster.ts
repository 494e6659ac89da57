// A real local cluster for the browser tests, composed from the exported pieces: the API server,
// one agent (with its VM kernel) per node driven on timers, and the balancer, run on demand through
// the API and, once started, on an interval.
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer } from '../../functions/api/server.ts';
import { startBalancerLoop } from '../../functions/balancer/loop.ts';
import { type BalancerDeps, runBalancer } from '../../functions/balancer/run.ts';
import { type Agent, createAgent } from '../../node-agent/agent/agent.ts';
import { QemuDriver } from '../../node-agent/drivers/qemu/driver.ts';
import { kernelWithQemu } from '../../node-agent/drivers/qemu/kernel-bridge.ts';
import { createKernel, UNITS_PER_CORE } from '../../node-agent/kernel/index.ts';
import { DEFAULT_TIMINGS } from '../../shared/domain/protocol.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { Weights } from '../../shared/domain/types.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { patchBalancingConfig } from '../../shared/storage/config-store.ts';
import { createImageStore, s3Blobs } from '../../shared/storage/image-store.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const TICK_MS = 50;
const HEARTBEAT_MS = 300;
const ROUND_MS = 1000;

export interface NodeSetup {
  id: string;
  /** Cores; the node serves this many load units under weight cpu = 1. */
  capacity: number;
  weights?: Weights;
  /** Offer the qemu driver beside the kernel (real QEMU processes under TCG). */
  qemu?: boolean;
}

export interface LocalCluster {
  url: string;
  token: string;
  /** Calls the API with the token; throws on a non-2xx answer. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Starts the balancer on its interval (the tests start it only when they want VMs to move by themselves). */
  startBalancer(): void;
  stop(): Promise<void>;
}

function startAgent(clients: Clients, node: NodeSetup): { agent: Agent; stop(): Promise<void> } {
  const weights = node.weights ?? { cpu: 1, io: 0.2, mem: 0.05 };
  const clock = Date.now;
  const images = createImageStore(clients);
  const kernel = createKernel(
    { nodeId: node.id, capacity: node.capacity * UNITS_PER_CORE, weights, tickMs: TICK_MS, clock },
    { images },
  );
  const qemu = node.qemu
    ? new QemuDriver({
        nodeId: node.id,
        binary: 'qemu-system-x86_64',
        workDir: join(tmpdir(), `seesaw-browser-qemu-${node.id}-${process.pid}`),
        accel: 'tcg',
        blobs: s3Blobs(clients),
        weights,
        clock,
      })
    : undefined;
  const agent = createAgent(
    { clients, kernel: qemu ? kernelWithQemu(kernel, qemu) : kernel, clock, log: quiet },
    {
      node: {
        id: node.id,
        capacity: node.capacity,
        weights,
        memCapacityPages: 65_536,
        ...(qemu ? { labels: { qemu: 'tcg' } } : {}),
      },
      lease: { leaseMs: 10_000, fenceMarginMs: 2_000 },
      checkpointMs: 5_000,
      cooldownMs: 60_000,
      timings: DEFAULT_TIMINGS,
    },
  );
  let stopped = false;
  const ticker = setInterval(() => agent.tick(), TICK_MS);
  let beat: Promise<void> = Promise.resolve();
  const loop = async () => {
    while (!stopped) {
      try {
        await agent.heartbeat(HEARTBEAT_MS);
        await agent.reconcile();
      } catch (error) {
        if (!stopped) console.warn(`agent ${node.id}:`, error);
      }
      await new Promise((r) => setTimeout(r, HEARTBEAT_MS));
    }
  };
  beat = agent.register().then(loop);
  return {
    agent,
    async stop() {
      stopped = true;
      clearInterval(ticker);
      await beat.catch(() => undefined);
      await agent.shutdown().catch(() => undefined);
      await qemu?.stopAll();
    },
  };
}

export async function startLocalCluster(
  clients: Clients,
  nodes: readonly NodeSetup[],
): Promise<LocalCluster> {
  const token = randomBytes(12).toString('hex');
  // Quick rounds for a test: VMs may move again soon, and a drain is not held to one move per round.
  await patchBalancingConfig(clients, { cooldownMs: 5_000, maxMigrationsPerNode: 4 }, Date.now());
  const balancer: BalancerDeps = { clients, clock: Date.now, rng: createRng(7), log: quiet };
  const server = await startApiServer({
    clients,
    token,
    port: 0,
    runBalancer: ({ dryRun }) => runBalancer(balancer, { dryRun, roundMs: ROUND_MS }),
  });
  const agents = nodes.map((node) => startAgent(clients, node));
  let loop: { stop(): Promise<void> } | undefined;

  async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  return {
    url: server.url,
    token,
    api,
    startBalancer() {
      loop ??= startBalancerLoop(balancer, { intervalMs: ROUND_MS });
    },
    async stop() {
      await loop?.stop();
      await Promise.all(agents.map((a) => a.stop()));
      await server.close();
    },
  };
}

/** Polls `probe` every 200 ms until it returns a value, or fails naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
