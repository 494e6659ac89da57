#!/usr/bin/env node
// The `seesaw` command. Runs the TypeScript sources directly through tsx, so a fresh clone
// needs no build step.
import { register } from 'tsx/esm/api';

// The SDK warns every process on Node 20 about a support change in 2027; say it once in the README instead.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  if (type === 'NodeVersionSupportWarning') return;
  emitWarning(warning, ...rest);
};

register();
await import('./cli.ts');
