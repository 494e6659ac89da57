// The lint rule that keeps data access in shared/storage: run biome with the project's config on a
// scratch tree and check which imports it refuses where.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const BIOME = join(ROOT, 'node_modules/.bin/biome');

const FILES: Record<string, string> = {
  'functions/reaper/keys.ts':
    "import { nodeKey } from '../../shared/storage/keys.ts';\nexport const a = nodeKey;\n",
  'functions/balancer/table.ts':
    "import { getItem } from '../../shared/storage/table.ts';\nexport const a = getItem;\n",
  'node-agent/agent/doc.ts':
    "import { GetCommand } from '@aws-sdk/lib-dynamodb';\nexport const a = GetCommand;\n",
  'bin/raw.ts':
    "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';\nexport const a = DynamoDBClient;\n",
  'shared/domain/keys.ts': "import { vmKey } from '../storage/keys.ts';\nexport const a = vmKey;\n",
  'shared/sim/keys.ts': "import { vmKey } from '../storage/keys.ts';\nexport const a = vmKey;\n",
  'functions/reaper/named.ts':
    "import { listNodes } from '../../shared/storage/nodes.ts';\nexport const a = listNodes;\n",
  'shared/storage/inside.ts':
    "import { GetCommand } from '@aws-sdk/lib-dynamodb';\nimport { nodeKey } from './keys.ts';\nexport const a = [GetCommand, nodeKey];\n",
  'test/raw.ts': "import { nodeKey } from '../shared/storage/keys.ts';\nexport const a = nodeKey;\n",
};

let dir: string;
let flagged: Set<string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'seesaw-lint-'));
  copyFileSync(join(ROOT, 'biome.json'), join(dir, 'biome.json'));
  for (const [path, text] of Object.entries(FILES)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const out = spawnSync(BIOME, ['lint', '--reporter=json', '--max-diagnostics=none', '.'], {
    cwd: dir,
    encoding: 'utf8',
  });
  const report = JSON.parse(out.stdout) as {
    diagnostics: { category: string; location: { path: string } }[];
  };
  flagged = new Set(
    report.diagnostics
      .filter((d) => d.category === 'lint/style/noRestrictedImports')
      .map((d) => d.location.path),
  );
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the storage boundary lint rule', () => {
  it.each([
    'functions/reaper/keys.ts',
    'functions/balancer/table.ts',
    'node-agent/agent/doc.ts',
    'bin/raw.ts',
    'shared/domain/keys.ts',
    'shared/sim/keys.ts',
  ])('refuses keys, table primitives and DynamoDB clients in %s', (path) => {
    expect(flagged).toContain(path);
  });

  it.each(['functions/reaper/named.ts', 'shared/storage/inside.ts', 'test/raw.ts'])(
    'lets %s through (a named storage function, storage itself, a test)',
    (path) => {
      expect(flagged).not.toContain(path);
    },
  );
});
