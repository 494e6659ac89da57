// Where the CLI's cluster is and how to talk to it: the data directory (flag, env, a `.seesaw` in
// this directory or a parent, the user config that `seesaw up` writes), the API URL (flag, env,
// a CloudFormation stack's outputs, the data directory) and the auth mode (a bearer token for the
// local cluster, SigV4 for a deployed one). Every failure names what was looked for and where.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const DEFAULT_API = 'http://127.0.0.1:8787';
export const DATA_DIR_NAME = '.seesaw';

/** The global options as commander hands them over. */
export interface ConnectionOptions {
  api?: string;
  token?: string;
  /** The cluster's data directory (holds `token` and `endpoints.json`). */
  data?: string;
  stack?: string;
  auth?: string;
  region?: string;
}

export type Connection =
  | { api: string; via: string; auth: 'token'; token: string }
  | { api: string; via: string; auth: 'iam'; region: string };

/** The user config file: $XDG_CONFIG_HOME/seesaw/config.json, else ~/.config/seesaw/config.json. */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'seesaw', 'config.json');
}

export interface UserConfig {
  /** The data directory of the last cluster `seesaw up` started. */
  data?: string;
  api?: string;
}

export function readUserConfig(env: NodeJS.ProcessEnv = process.env): UserConfig | undefined {
  const file = userConfigPath(env);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as UserConfig;
  } catch {
    throw new Error(`${file} is not valid JSON; fix or delete it`);
  }
}

/** Remembers the last local cluster so the CLI finds it from any directory. */
export function writeUserConfig(config: UserConfig, env: NodeJS.ProcessEnv = process.env): string {
  const file = userConfigPath(env);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify({ ...config, data: config.data && resolve(config.data) }, null, 2)}\n`,
  );
  return file;
}

const isDir = (path: string) => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

export interface ClusterDir {
  dir: string;
  /** How it was found, for messages. */
  via: string;
}

/**
 * The cluster's data directory: --data, else SEESAW_DATA (an explicit choice, like GIT_DIR, beats
 * discovery), else the nearest `.seesaw` in the current directory or a parent, else the one in the
 * user config. `looked` lists what was tried, for the error when nothing is found.
 */
export function findClusterDir(
  options: Pick<ConnectionOptions, 'data'>,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): { found?: ClusterDir; looked: string[] } {
  if (options.data) return { found: { dir: resolve(cwd, options.data), via: '--data' }, looked: [] };
  if (env.SEESAW_DATA)
    return { found: { dir: resolve(cwd, env.SEESAW_DATA), via: 'SEESAW_DATA' }, looked: [] };
  const looked: string[] = [];
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, DATA_DIR_NAME);
    if (isDir(candidate)) return { found: { dir: candidate, via: `found in ${dir}` }, looked };
    if (dirname(dir) === dir) break;
  }
  looked.push(`no ${DATA_DIR_NAME} in ${resolve(cwd)} or any parent`, 'SEESAW_DATA is not set');
  const file = userConfigPath(env);
  const config = readUserConfig(env);
  if (config?.data) {
    if (isDir(config.data)) return { found: { dir: config.data, via: file }, looked };
    looked.push(`${file} names ${config.data}, which no longer exists`);
  } else looked.push(`no ${file}`);
  return { looked };
}

/** True for localhost, 127.0.0.0/8 and ::1: the local cluster, which takes a bearer token. */
export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The region in an execute-api hostname (abc.execute-api.eu-west-1.amazonaws.com), if any. */
export function regionOfUrl(url: string): string | undefined {
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(new URL(url).hostname)?.[1];
}

export interface ResolveDeps {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Reads a stack's API URL (the CloudFormation call; replaced in tests). */
  stackApi?: (stack: string, region: string | undefined) => Promise<string>;
}

/** Where the API is and how to authenticate, from the global options, the environment and the disk. */
export async function resolveConnection(
  options: ConnectionOptions,
  deps: ResolveDeps = {},
): Promise<Connection> {
  const env = deps.env ?? process.env;
  const cwd = deps.cwd ?? process.cwd();
  const stack = options.stack || env.SEESAW_STACK;
  const region = options.region || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  let api = options.api || env.SEESAW_API;
  let via = options.api ? '--api' : 'SEESAW_API';
  const cluster = findClusterDir(options, env, cwd);
  const dir = cluster.found?.dir;
  if (dir && !isDir(dir) && (cluster.found?.via === '--data' || cluster.found?.via === 'SEESAW_DATA'))
    throw new Error(
      `${cluster.found.via} names ${dir}, which is not a directory (a cluster's data directory holds endpoints.json and token)`,
    );
  if (!api && stack) {
    const stackApi = deps.stackApi ?? (await import('./stack.ts')).stackApiUrl;
    api = await stackApi(stack, region);
    via = `stack ${stack}`;
  }
  if (!api && dir) {
    const endpoints = join(dir, 'endpoints.json');
    via = `${endpoints} (${cluster.found?.via})`;
    if (existsSync(endpoints)) {
      try {
        api = (JSON.parse(readFileSync(endpoints, 'utf8')) as { api?: string }).api;
      } catch {
        // a half-written file: fall back to the default port
      }
    }
    api ??= DEFAULT_API;
  }
  if (!api)
    throw new Error(
      `no cluster found (${['no --api or SEESAW_API', 'no --stack or SEESAW_STACK', ...cluster.looked].join(
        '; ',
      )}): start one with \`npm start\`, or pass --data DIR, --api URL or --stack NAME`,
    );
  try {
    new URL(api);
  } catch {
    throw new Error(`${via}: "${api}" is not a URL`);
  }
  api = api.replace(/\/+$/, '');

  const auth = options.auth || env.SEESAW_AUTH || (isLoopback(api) ? 'token' : 'iam');
  if (auth !== 'iam' && auth !== 'token')
    throw new Error(`--auth / SEESAW_AUTH must be iam or token, got "${auth}"`);
  if (auth === 'iam') {
    const signingRegion = regionOfUrl(api) ?? region;
    if (!signingRegion)
      throw new Error(
        `IAM auth needs a region: ${api} names none, and neither --region, AWS_REGION nor AWS_DEFAULT_REGION is set`,
      );
    return { api, via, auth, region: signingRegion };
  }
  let token = options.token || env.SEESAW_TOKEN;
  if (!token && dir) {
    const file = join(dir, 'token');
    if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
  }
  if (!token)
    throw new Error(
      `no API token: pass --token, set SEESAW_TOKEN, or start the cluster with \`npm start\` (it writes ${join(dir ?? resolve(cwd, DATA_DIR_NAME), 'token')})`,
    );
  return { api, via, auth, token };
}
