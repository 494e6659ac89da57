// Lambda entry for the scheduled reaper: clients once per container, logic in reaper.ts.
import pino from 'pino';
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { emfLine, type ReaperReport, runReaper } from './reaper.ts';

const clients = createClients(storageConfigFromEnv());
const images = createImageStore(clients);
const log = pino({ name: 'seesaw-reaper' });
const graceMs = process.env.SEESAW_REAPER_GRACE_MS ? Number(process.env.SEESAW_REAPER_GRACE_MS) : undefined;

export async function handler(): Promise<ReaperReport> {
  const report = await runReaper(
    { clients, clock: Date.now, log, images },
    graceMs === undefined ? {} : { graceMs },
  );
  // EMF: CloudWatch turns this stdout line into metrics; the stack alarms on StuckMigrations.
  process.stdout.write(`${emfLine(report)}\n`);
  return report;
}
