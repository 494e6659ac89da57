// `seesaw agent install --systemd`: the unit that runs one node's agent under systemd, restarted on
// failure, as a dedicated unprivileged user, with the filesystem, kernel and devices out of reach.
// The agent writes nothing to disk (logs go to the journal, state to DynamoDB and S3), so the whole
// filesystem can be read-only for it.

export const UNIT_NAME = 'seesaw-agent.service';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
export const DEFAULT_ENV_FILE = '/etc/seesaw/agent.env';

export interface UnitOptions {
  /** Absolute path of node. */
  node: string;
  /** Absolute path of the seesaw entry (dist/seesaw.js of the installed bundle). */
  entry: string;
  user: string;
  /** Optional environment file: SEESAW_NODE, SEESAW_TABLE, SEESAW_BUCKET, AWS_REGION, … */
  envFile: string;
  /** Arguments after `agent` (e.g. --node i-0abc --capacity 8000000). */
  agentArgs: string[];
}

/** systemd's quoting for one ExecStart word: double quotes when needed, with \\ " and $ escaped. */
export function quoteArg(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`;
}

export function agentUnit(options: UnitOptions): string {
  const exec = [options.node, options.entry, 'agent', ...options.agentArgs].map(quoteArg).join(' ');
  return `# Written by \`seesaw agent install --systemd\`.
[Unit]
Description=Seesaw node agent
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=simple
User=${options.user}
Group=${options.user}
EnvironmentFile=-${options.envFile}
ExecStart=${exec}
# The agent stops its VMs and releases its lease on SIGTERM.
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=on-failure
RestartSec=5

# Hardening (systemd.exec(5)). Not MemoryDenyWriteExecute: V8's JIT needs writable code pages.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0077

[Install]
WantedBy=multi-user.target
`;
}
