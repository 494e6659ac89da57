// The simulator's only I/O: reading scenario files, trace directories and run-history files.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseScenario } from './scenario-file.ts';
import type { TraceSet } from './trace.ts';
import type { Scenario } from './types.ts';

export function readScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read scenario file ${path}: ${(error as Error).message}`);
  }
  return parseScenario(text, path);
}

/** A directory of PlanetLab-format traces (one file per VM, one percentage per line), in name order. */
export function readTraceDir(dir: string, limit?: number): TraceSet {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    names = readdirSync(dir)
      .filter((n) => !n.startsWith('.') && !n.toLowerCase().endsWith('.md'))
      .sort();
  } catch (error) {
    throw new Error(`cannot read trace directory ${dir}: ${(error as Error).message}`);
  }
  if (limit !== undefined) names = names.slice(0, limit);
  const vms = names.map((name) => {
    const lines = readFileSync(join(dir, name), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    const percent = lines.map((line, i) => {
      const value = Number(line);
      if (!Number.isFinite(value) || value < 0) {
        throw new Error(`${join(dir, name)} line ${i + 1}: expected a percentage, got "${line}"`);
      }
      return value;
    });
    return { id: name, percent };
  });
  if (vms.length === 0) throw new Error(`trace directory ${dir} holds no trace files`);
  return { name: basename(dir), vms };
}
