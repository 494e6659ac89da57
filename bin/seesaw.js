#!/usr/bin/env node
// The `seesaw` command. Runs the bundle in dist/ (built by `npm install` through "prepare", or
// `npm run build`) when it is newer than every source file it was built from; otherwise runs the
// TypeScript sources through tsx, so a developer's edits take effect without a build. `bench`
// always runs from the sources: its suites are TypeScript files loaded by name.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const bundle = new URL('dist/seesaw.js', root);

function bundleIsFresh() {
  try {
    const built = statSync(bundle).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL('dist/inputs.json', root), 'utf8'));
    return inputs.every((file) => statSync(new URL(file, root)).mtimeMs <= built);
  } catch {
    return false; // no bundle, or a source file it was built from is gone
  }
}

if (process.argv[2] !== 'bench' && process.env.SEESAW_FROM_SOURCE !== '1' && bundleIsFresh()) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
