#!/usr/bin/env node
// `npm run build` (also run by `npm install` through "prepare"): bundles the CLI, which is also the
// node agent (`seesaw agent`), into dist/ as ESM with esbuild. Commands load their code as
// separate chunks on first use, so `seesaw --help` parses little. The built-in guests go beside the
// chunks as .wat and precompiled .wasm. Plain JavaScript, so it runs before anything is built.
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist');
const guests = join(root, 'node-agent', 'guests');

// Left to node_modules: the local stores (`seesaw up` only, with native or data files of their
// own), the dev-only TypeScript loader and the WAT compiler (the bundle ships compiled guests).
export const EXTERNAL = ['dynalite', 's3rver', 'tsx', 'tsx/*', 'esbuild', 'wabt'];

/**
 * A checkout may hold only what an agent needs (the fleet's asset: bin/, node-agent/, shared/):
 * imports of source files that are not there stay unresolved in the bundle, so the commands
 * that need them (`up`, `bench`) fail when run, and the rest work.
 */
const missingSources = (missing) => ({
  name: 'missing-sources',
  setup(b) {
    // Our sources import each other by relative path with the .ts extension.
    b.onResolve({ filter: /^\.\.?\/.*\.ts$/ }, (args) => {
      if (args.importer.includes('node_modules') || existsSync(resolve(args.resolveDir, args.path)))
        return undefined;
      missing.add(relative(root, resolve(args.resolveDir, args.path)));
      return { path: args.path, external: true };
    });
  },
});

export async function buildCli({ outdir = out, quiet = false } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  const missing = new Set();
  const result = await build({
    plugins: [missingSources(missing)],
    absWorkingDir: root,
    entryPoints: { seesaw: 'bin/cli.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Chunks stay flat in dist/, so `new URL('./x', import.meta.url)` means the same in every one.
    chunkNames: '[name]-[hash]',
    external: EXTERNAL,
    minifySyntax: true,
    minifyWhitespace: true,
    legalComments: 'linked',
    metafile: true,
    logLevel: quiet ? 'error' : 'warning',
    // CommonJS packages inside an ESM bundle still call require() for Node built-ins.
    banner: {
      js: "import { createRequire as __seesawRequire } from 'node:module'; const require = __seesawRequire(import.meta.url);",
    },
  });
  const { default: wabtInit } = await import('wabt');
  const wabt = await wabtInit();
  const names = readdirSync(guests).filter((f) => f.endsWith('.wat'));
  for (const file of names) {
    copyFileSync(join(guests, file), join(outdir, file));
    const parsed = wabt.parseWat(file, readFileSync(join(guests, file), 'utf8'));
    try {
      parsed.validate();
      writeFileSync(join(outdir, file.replace(/\.wat$/, '.wasm')), parsed.toBinary({}).buffer);
    } finally {
      parsed.destroy();
    }
  }
  writeFileSync(join(outdir, 'package.json'), `${JSON.stringify({ type: 'module' })}\n`);
  // What bin/seesaw.js compares against to tell whether this bundle is older than the sources.
  const inputs = Object.keys(result.metafile.inputs).filter(
    (f) => !f.includes('node_modules/') && f !== 'package.json',
  );
  writeFileSync(join(outdir, 'inputs.json'), `${JSON.stringify(['package.json', ...inputs])}\n`);
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + o.bytes, 0);
  if (missing.size && !quiet)
    console.warn(`partial checkout: commands that need ${[...missing].join(', ')} will not run`);
  if (!quiet)
    console.log(
      `dist/: ${Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).length} chunks, ${(bytes / 1e6).toFixed(1)} MB, ${names.length} guests`,
    );
  return result;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildCli();
