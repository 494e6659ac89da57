// The node agent process: one validated config from flags and env, structured logs, the agent
// loop on the real clock, and a graceful shutdown on SIGTERM/SIGINT.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { z } from 'zod';
import { DEFAULT_TIMINGS } from '../shared/domain/protocol.ts';
import { createClients, type StorageConfig, storageConfigFromEnv } from '../shared/storage/clients.ts';
import { getBalancingConfig } from '../shared/storage/config-store.ts';
import { createImageStore } from '../shared/storage/image-store.ts';
import { createAgent } from './agent/agent.ts';
import { runAgent } from './agent/run.ts';
import { withQemu } from './drivers/qemu/agent-wiring.ts';
import { createKernel, UNITS_PER_CORE } from './kernel/index.ts';

const positive = z.number().int().positive();

export const agentProcessConfigSchema = z
  .object({
    node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'node id: letters, digits, . _ -'),
    capacity: z.number().positive(),
    weights: z.object({
      cpu: z.number().min(0),
      io: z.number().min(0),
      mem: z.number().min(0),
      paging: z.number().min(0).optional(),
      net: z.number().min(0).optional(),
    }),
    labels: z.record(z.string(), z.string()),
    memCapacityPages: positive,
    leaseMs: positive.min(100),
    reportMs: positive,
    tickMs: positive,
    reconcileMs: positive,
    checkpointMs: positive,
    fenceMarginMs: z.number().int().min(0),
    storage: z.object({
      tableName: z.string().min(3),
      bucketName: z.string().min(3),
      region: z.string().min(1),
      dynamoEndpoint: z.string().url().optional(),
      s3Endpoint: z.string().url().optional(),
      credentials: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }).optional(),
    }),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** Offer the qemu driver (x86 VMs) beside the kernel, if qemu-system-x86_64 is installed. */
    qemu: z.boolean(),
  })
  .refine((c) => c.reportMs < c.leaseMs - c.fenceMarginMs, {
    message:
      'reportMs must be shorter than leaseMs minus fenceMarginMs, or the node fences itself between reports',
  });

export type AgentProcessConfig = z.infer<typeof agentProcessConfigSchema>;

/** Raw options as the CLI hands them over (strings from flags); env fills the storage part. */
export interface AgentFlags {
  node?: string;
  capacity?: string;
  weights?: string;
  labels?: string[];
  memPages?: string;
  leaseMs?: string;
  reportMs?: string;
  tickMs?: string;
  reconcileMs?: string;
  checkpointMs?: string;
  data?: string;
  logLevel?: string;
  qemu?: boolean;
}

/** `cpu=1,io=0.2,mem=0.1` → { cpu: 1, io: 0.2, mem: 0.1 } (values stay strings for zod to reject). */
export function parsePairs(text: string | string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (Array.isArray(text) ? text : [text ?? '']).flatMap((t) => t.split(','))) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq < 1) throw new Error(`expected key=value, got "${part}"`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

const num = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));

/** Builds and validates the one config object; throws a readable error for bad input. */
export function resolveAgentConfig(
  flags: AgentFlags,
  env: NodeJS.ProcessEnv = process.env,
): AgentProcessConfig {
  let storage: StorageConfig = storageConfigFromEnv(env);
  if (flags.data) {
    const file = join(flags.data, 'endpoints.json');
    const endpoints = JSON.parse(readFileSync(file, 'utf8')) as {
      dynamodb: string;
      s3: string;
      table: string;
      bucket: string;
      region: string;
      credentials?: { accessKeyId: string; secretAccessKey: string };
    };
    storage = {
      tableName: endpoints.table,
      bucketName: endpoints.bucket,
      region: endpoints.region,
      dynamoEndpoint: endpoints.dynamodb,
      s3Endpoint: endpoints.s3,
      ...(endpoints.credentials ? { credentials: endpoints.credentials } : {}),
    };
  }
  const weights = Object.fromEntries(
    Object.entries({ cpu: '1', io: '0.2', mem: '0.1', ...parsePairs(flags.weights) }).map(([k, v]) => [
      k,
      Number(v),
    ]),
  );
  const leaseMs = num(flags.leaseMs ?? env.SEESAW_LEASE_MS, 10_000);
  const raw = {
    node: flags.node ?? env.SEESAW_NODE,
    capacity: num(flags.capacity ?? env.SEESAW_CAPACITY, 4_000_000),
    weights,
    labels: parsePairs(flags.labels),
    memCapacityPages: num(flags.memPages, 16_384),
    leaseMs,
    reportMs: num(flags.reportMs ?? env.SEESAW_REPORT_MS, Math.floor(leaseMs / 4)),
    tickMs: num(flags.tickMs ?? env.SEESAW_TICK_MS, 100),
    reconcileMs: num(flags.reconcileMs ?? env.SEESAW_RECONCILE_MS, 250),
    checkpointMs: num(flags.checkpointMs ?? env.SEESAW_CHECKPOINT_MS, 30_000),
    fenceMarginMs: Math.floor(leaseMs / 5),
    storage,
    logLevel: flags.logLevel ?? env.LOG_LEVEL ?? 'info',
    qemu: flags.qemu ?? env.SEESAW_QEMU === '1',
  };
  const parsed = agentProcessConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new Error(
      `invalid agent configuration: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/**
 * SIGTERM/SIGINT from the start of the process: `stop` is called on the first (a second gets Node's
 * default, ending the process at once); `requested` says whether one came before there was anything
 * to stop. Without this a signal during registration ended the process with its new lease held.
 */
function handleSignals(log: pino.Logger) {
  let requested = false;
  let stop: (() => void) | undefined;
  const on = (signal: string) => () => {
    requested = true;
    log.info({ signal }, 'shutting down');
    stop?.();
  };
  const onTerm = on('SIGTERM');
  const onInt = on('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  return {
    get requested() {
      return requested;
    },
    /** What a signal does from now on (at once, if one came already). */
    onStop(fn: () => void) {
      stop = fn;
      if (requested) fn();
    },
    dispose() {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
    },
  };
}

/** Starts the agent process and resolves when it has stopped (SIGTERM/SIGINT, or superseded). */
export async function runAgentProcess(config: AgentProcessConfig): Promise<void> {
  const log = pino({ name: 'seesaw-agent', level: config.logLevel, base: { node: config.node } });
  const signals = handleSignals(log);
  const clients = createClients(config.storage);
  const images = createImageStore(clients);
  const clock = Date.now;
  let qemu: Awaited<ReturnType<typeof withQemu>> | undefined;
  try {
    const wasm = createKernel(
      {
        nodeId: config.node,
        capacity: config.capacity,
        weights: config.weights,
        tickMs: config.tickMs,
        clock,
        memCapacityPages: config.memCapacityPages,
      },
      { images },
    );
    qemu = config.qemu
      ? await withQemu(wasm, { nodeId: config.node, clients, weights: config.weights, clock, log })
      : undefined;
    const kernel = qemu?.kernel ?? wasm;
    const agentConfig = {
      node: {
        id: config.node,
        // The kernel serves work units; the node item speaks the balancer's load units (cores × CPU weight).
        capacity: (config.capacity / UNITS_PER_CORE) * config.weights.cpu,
        weights: config.weights,
        memCapacityPages: config.memCapacityPages,
        labels: { ...qemu?.labels, ...config.labels },
      },
      lease: { leaseMs: config.leaseMs, fenceMarginMs: config.fenceMarginMs },
      checkpointMs: config.checkpointMs,
      cooldownMs: 60_000,
      timings: DEFAULT_TIMINGS,
    };
    const refreshCooldown = async () => {
      agentConfig.cooldownMs = (await getBalancingConfig(clients)).cooldownMs;
    };
    await refreshCooldown().catch(() => undefined);
    const holder = { pid: process.pid, host: hostname() };
    const agent = createAgent({ clients, kernel, clock, log, images, holder }, agentConfig);
    // Asked to stop before registering: there is no lease to take, nor to give up.
    if (signals.requested) return;
    // One process per node id: a live lease of another incarnation refuses this one (NodeHeld).
    await agent.register();
    // Asked to stop while registering: the lease just taken is given up at once.
    if (signals.requested) return await agent.shutdown();
    let reports = 0;
    const running = runAgent(
      agent,
      { tickMs: config.tickMs, reportMs: config.reportMs, reconcileMs: config.reconcileMs },
      log,
      async () => {
        reports += 1;
        if (reports % 20 === 0) await refreshCooldown();
      },
    );
    signals.onStop(() => void running.stop());
    log.info(
      { capacity: config.capacity, weights: config.weights, leaseMs: config.leaseMs },
      'agent started',
    );
    await running.done;
  } finally {
    signals.dispose();
    await qemu?.stop();
    clients.dynamo.destroy();
    clients.s3.destroy();
  }
}
