// Global setup: one dynalite and one s3rver on free loopback ports for the whole run.
// Test files get their own table and bucket (see test/support/stores.ts), so they never share state.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startLocalStores } from '../../shared/local/stores.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stores: { dynamoEndpoint: string; s3Endpoint: string };
  }
}

export default async function setup(project: TestProject) {
  const scratchDir = mkdtempSync(join(tmpdir(), 'seesaw-s3-'));
  const stores = await startLocalStores({ scratchDir });
  project.provide('stores', { dynamoEndpoint: stores.dynamoEndpoint, s3Endpoint: stores.s3Endpoint });
  return async () => {
    await stores.close();
    rmSync(scratchDir, { recursive: true, force: true });
  };
}
