// `npm run e2e:hostile -- --minutes 5`: the hostile end-to-end test (test/e2e/hostile.test.ts) for
// longer than CI runs it, on a real `seesaw up` cluster.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '5' } } });
const minutes = Number(values.minutes);
if (minutes > 0) {
  const run = spawnSync('npx', ['vitest', 'run', 'test/e2e/hostile.test.ts'], {
    stdio: 'inherit',
    env: { ...process.env, SEESAW_HOSTILE_SECONDS: String(Math.round(minutes * 60)) },
  });
  process.exitCode = run.status ?? 1;
} else {
  console.error(`seesaw: --minutes must be a positive number, not ${values.minutes}`);
  process.exitCode = 2;
}
