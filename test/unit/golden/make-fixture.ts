// Writes decisions.json beside this file: the golden record of what the balancer decides on the
// fixed scenarios of scenarios.ts. Run it (`npm run golden`) only when a policy change is meant to
// change decisions, and say so in the commit; a speed-up must leave the file as it is.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { goldenNow } from './scenarios.ts';

const file = fileURLToPath(new URL('./decisions.json', import.meta.url));
const golden = await goldenNow();
writeFileSync(file, `${JSON.stringify(golden, null, 2)}\n`);
console.log(
  `wrote ${file}: ${golden.rounds.length} rounds, ${golden.views.length} views, ${golden.runs.length} runs`,
);
