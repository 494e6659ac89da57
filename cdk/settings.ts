// The deployment's knobs, read once from CDK context (cdk.json, `-c key=value`) and validated,
// so a typo fails the synth with a clear message instead of deploying something odd.
import { Duration } from 'aws-cdk-lib';
import type { Node } from 'constructs';

export interface SeesawSettings {
  stackName: string;
  /** How often each balancer shard runs. */
  balancerRate: Duration;
  /** Number of balancer shards: one schedule target per shard. */
  shards: number;
  /** How often the reaper runs. */
  reaperRate: Duration;
  /** Optional address subscribed to the alarm topic. */
  alarmEmail?: string;
  /** The first dashboard operator, invited to the user pool by e-mail. */
  adminEmail?: string;
  /** Agent hosts the stack runs (0: no fleet, the stack stays as it was). */
  agents: number;
  /** EC2 instance type of the agent hosts (arm64). */
  agentInstanceType: string;
}

export const CONTEXT = {
  stackName: 'seesaw:stackName',
  balancerRate: 'seesaw:balancerRate',
  shards: 'seesaw:shards',
  reaperRate: 'seesaw:reaperRate',
  alarmEmail: 'seesaw:alarmEmail',
  // As the deploy guide spells them: `-c adminEmail=… -c agents=N`.
  adminEmail: 'adminEmail',
  agents: 'agents',
  agentInstanceType: 'agentInstanceType',
} as const;

export const DEFAULT_SETTINGS = {
  stackName: 'Seesaw',
  balancerRate: '1 minute',
  shards: 1,
  reaperRate: '1 minute',
  agents: 0,
  agentInstanceType: 't4g.small',
} as const;

/** A sanity bound: each shard is one schedule and one Lambda invocation per round. */
const MAX_SHARDS = 64;
/** A sanity bound on the optional fleet; larger clusters bring their own hosts. */
const MAX_AGENTS = 100;

export class InvalidSetting extends Error {
  override readonly name = 'InvalidSetting';
  constructor(key: string, value: unknown, expected: string) {
    super(`context ${key}=${JSON.stringify(value)} is invalid: expected ${expected}`);
  }
}

/** Parses "5 minutes", "1 hour", "rate(2 minutes)" or a bare number of minutes; at least one minute. */
export function parseRate(key: string, value: unknown): Duration {
  const text = String(value).trim();
  const match = /^(?:rate\()?\s*(\d+)\s*(minute|minutes|hour|hours|day|days)?\s*\)?$/i.exec(text);
  const amount = match ? Number(match[1]) : Number.NaN;
  if (!match || !Number.isSafeInteger(amount) || amount < 1) {
    throw new InvalidSetting(
      key,
      value,
      'a rate such as "1 minute", "5 minutes" or "1 hour" (at least 1 minute)',
    );
  }
  const unit = (match[2] ?? 'minutes').toLowerCase();
  if (unit.startsWith('hour')) return Duration.hours(amount);
  if (unit.startsWith('day')) return Duration.days(amount);
  return Duration.minutes(amount);
}

function parseCount(key: string, value: unknown, min: number, max: number): number {
  const count = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(count) || count < min || count > max) {
    throw new InvalidSetting(key, value, `an integer from ${min} to ${max}`);
  }
  return count;
}

const parseShards = (value: unknown) => parseCount(CONTEXT.shards, value, 1, MAX_SHARDS);

function parseInstanceType(value: unknown): string {
  const type = String(value).trim();
  // Graviton families only: the launch template's image is the arm64 Amazon Linux 2023.
  if (!/^[a-z]+\d+g[a-z-]*\.[a-z0-9]+$/.test(type)) {
    throw new InvalidSetting(CONTEXT.agentInstanceType, value, 'an arm64 (Graviton) type such as t4g.small');
  }
  return type;
}

function parseStackName(value: unknown): string {
  const name = String(value);
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(name)) {
    throw new InvalidSetting(
      CONTEXT.stackName,
      value,
      'a CloudFormation stack name (letters, digits, hyphens)',
    );
  }
  return name;
}

function parseEmail(value: unknown, key: string = CONTEXT.alarmEmail): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const email = String(value);
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    throw new InvalidSetting(key, value, 'an email address');
  }
  return email;
}

/** Reads and validates every setting from a construct node's context, with defaults. */
export function settingsFromContext(node: Node): SeesawSettings {
  const read = (key: string, fallback: unknown) => node.tryGetContext(key) ?? fallback;
  const alarmEmail = parseEmail(read(CONTEXT.alarmEmail, undefined));
  const adminEmail = parseEmail(read(CONTEXT.adminEmail, undefined), CONTEXT.adminEmail);
  return {
    stackName: parseStackName(read(CONTEXT.stackName, DEFAULT_SETTINGS.stackName)),
    balancerRate: parseRate(CONTEXT.balancerRate, read(CONTEXT.balancerRate, DEFAULT_SETTINGS.balancerRate)),
    shards: parseShards(read(CONTEXT.shards, DEFAULT_SETTINGS.shards)),
    reaperRate: parseRate(CONTEXT.reaperRate, read(CONTEXT.reaperRate, DEFAULT_SETTINGS.reaperRate)),
    ...(alarmEmail ? { alarmEmail } : {}),
    ...(adminEmail ? { adminEmail } : {}),
    agents: parseCount(CONTEXT.agents, read(CONTEXT.agents, DEFAULT_SETTINGS.agents), 0, MAX_AGENTS),
    agentInstanceType: parseInstanceType(read(CONTEXT.agentInstanceType, DEFAULT_SETTINGS.agentInstanceType)),
  };
}

/** Context as the CDK CLI would pass it: cdk.json's `context`, then `-c key=value` arguments over it. */
export function contextFromArgs(
  argv: readonly string[],
  fileContext: Record<string, unknown> = {},
): Record<string, unknown> {
  const context: Record<string, unknown> = { ...fileContext };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag !== '-c' && flag !== '--context') continue;
    const pair = argv[++i] ?? '';
    const eq = pair.indexOf('=');
    if (eq < 1) throw new Error(`expected ${flag} key=value, got ${JSON.stringify(pair)}`);
    context[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return context;
}
