// Lambda entry for the scheduled reaper: clients and Powertools once per container, logic in
// reaper.ts. Each run's metrics leave as one CloudWatch EMF line; the stack alarms on StuckMigrations.
import { createClients, storageConfigFromEnv } from '../../shared/storage/clients.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { recordReaperMetrics } from '../metrics.ts';
import { instrumented, observability, pinoStyle, SERVICES, traceClients } from '../observability.ts';
import { type ReaperReport, runReaper } from './reaper.ts';

const tools = observability(SERVICES.reaper);
const clients = traceClients(tools.tracer, createClients(storageConfigFromEnv()));
const images = createImageStore(clients);
const log = pinoStyle(tools.logger);
const graceMs = process.env.SEESAW_REAPER_GRACE_MS ? Number(process.env.SEESAW_REAPER_GRACE_MS) : undefined;

export const handler = instrumented(tools, async (_event: unknown): Promise<ReaperReport> => {
  const report = await runReaper(
    { clients, clock: Date.now, log, images },
    graceMs === undefined ? {} : { graceMs },
  );
  recordReaperMetrics(tools.metrics, report);
  return report;
});
