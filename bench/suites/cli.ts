// CLI start-up: wall time of `seesaw --version` and `seesaw --help` from the bundle (what
// `npm install` builds), as a ratio to a bare `node -e 0` on the same machine, measured
// interleaved so that load on the machine hits all of them alike. The target is a ratio ≤ 4.
// Also through bin/seesaw.js (which checks the bundle is fresh first) and from the sources
// through tsx, for comparison.
import { execFileSync, spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../index.ts';

export const name = 'cli';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const round1 = (n: number) => Math.round(n * 10) / 10;
const round2 = (n: number) => Math.round(n * 100) / 100;

function wallMs(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const started = performance.now();
  const run = spawnSync(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = performance.now() - started;
  if (run.status !== 0) throw new Error(`node ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  return ms;
}

export async function run({ quick, log }: { quick: boolean; log: (line: string) => void }) {
  execFileSync(process.execPath, ['bin/build.js'], { cwd: REPO_ROOT, stdio: 'ignore' });
  const bundle = join(REPO_ROOT, 'dist', 'seesaw.js');
  const bin = join(REPO_ROOT, 'bin', 'seesaw.js');
  const runs = quick ? 7 : 21;
  const fromSource = { ...process.env, SEESAW_FROM_SOURCE: '1' };
  const cases: Record<string, () => number> = {
    bare: () => wallMs(['-e', '0']),
    version: () => wallMs([bundle, '--version']),
    help: () => wallMs([bundle, '--help']),
    binVersion: () => wallMs([bin, '--version']),
    binHelp: () => wallMs([bin, '--help']),
    tsxHelp: () => wallMs([bin, '--help'], fromSource),
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const measure of Object.values(cases)) measure(); // warm the file cache
  for (let i = 0; i < runs; i++) {
    for (const [k, measure] of Object.entries(cases)) samples[k]?.push(measure());
    // The spawns are synchronous, so the harness's "still running" line cannot run: say it here.
    if ((i + 1) % 5 === 0 && i + 1 < runs)
      log(`${i + 1} of ${runs} rounds of ${Object.keys(cases).length} starts`);
  }
  const ms = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, round1(median(xs))]));
  const bare = ms.bare ?? Number.NaN;
  const ratio = (k: string) => round2((ms[k] ?? Number.NaN) / bare);
  const figures = {
    runs,
    loadavg1: round2(loadavg()[0] ?? 0),
    medianMs: ms,
    ratio: {
      version: ratio('version'),
      help: ratio('help'),
      binVersion: ratio('binVersion'),
      binHelp: ratio('binHelp'),
      tsxHelp: ratio('tsxHelp'),
    },
    withinTarget: ratio('version') <= 4 && ratio('help') <= 4,
  };
  log(
    `node -e 0 ${bare} ms; --version ${ms.version} ms (${figures.ratio.version}×), --help ${ms.help} ms (${figures.ratio.help}×); through tsx ${ms.tsxHelp} ms`,
  );
  return figures;
}
