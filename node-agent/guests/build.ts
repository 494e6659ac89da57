// `npm run build:guests`: writes the built-in guests' .wasm files to node-agent/guests/dist
// (gitignored) for inspection or for registering them as modules. The kernel does not need them:
// it compiles the WAT sources itself.
import { mkdirSync, writeFileSync } from 'node:fs';
import { BUILTIN_GUESTS } from '../../shared/domain/guests.ts';
import { guestBinary } from './index.ts';

const out = new URL('./dist/', import.meta.url);
mkdirSync(out, { recursive: true });
for (const kind of BUILTIN_GUESTS) {
  const bytes = await guestBinary(kind);
  writeFileSync(new URL(`${kind}.wasm`, out), bytes);
  console.log(`${kind}.wasm ${bytes.byteLength} bytes`);
}
