// One agent of the migration bench in a process of its own, as `seesaw up` runs each agent (the
// stores stay in the bench's process): `node --import tsx bench/suites/_migration-agent.ts <args>`
// with an IPC channel (child_process.fork), <args> the JSON of AgentArgs. It builds the agent as the
// one-process topology does (startBenchAgent), sends the log entries the suite reads as they come,
// its GC and event-loop stalls when asked, and stops cleanly (checkpoint, lease released) when told.
// If the bench dies the channel closes, and so does this process. (A leading underscore keeps the
// harness from taking it for a suite.)
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { localClients } from '../../shared/local/stores.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import {
  type AgentArgs,
  type FromAgent,
  loggerTo,
  recordPauses,
  startBenchAgent,
  type ToAgent,
} from './_migration-node.ts';

const send = (m: FromAgent) => process.send?.(m);

async function main(args: AgentArgs) {
  if (!process.send) throw new Error('_migration-agent.ts runs as a child with an IPC channel (fork)');
  // The bench gone (killed, crashed): its stores are gone too, so there is nothing to release.
  process.on('disconnect', () => process.exit(1));
  const recorder = recordPauses();
  const clients = localClients(args, { tableName: args.tableName, bucketName: args.bucketName });
  const loop = await startBenchAgent(args.id, {
    clients,
    images: createImageStore(clients),
    log: traced(
      args.id,
      loggerTo((entry) => send({ type: 'log', entry })),
    ),
  });
  const stop = async () => {
    recorder.stop();
    try {
      await loop.stop();
    } finally {
      clients.dynamo.destroy();
      clients.s3.destroy();
    }
  };
  process.on('message', (m: ToAgent) => {
    if (m.type === 'pauses') send({ type: 'pauses', pauses: recorder.read() });
    if (m.type === 'stop')
      stop().then(
        () => process.send?.({ type: 'stopped' } satisfies FromAgent, () => process.exit(0)),
        (error: unknown) => fail(error),
      );
  });
  send({ type: 'ready' });
}

/** Tells the bench why this process ends (it prints it and fails the suite), then ends it. */
function fail(error: unknown) {
  const text = (error as Error).stack ?? String(error);
  if (process.send) process.send({ type: 'failed', error: text } satisfies FromAgent, () => process.exit(1));
  else {
    console.error(text);
    process.exit(1);
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as AgentArgs).catch(fail);

/**
 * With SEESAW_BENCH_AGENT_TRACE=<dir>, every line the agent logs (debug included) is appended to
 * <dir>/<node>.jsonl as well, to follow a move the suite's own lines do not explain.
 */
function traced(node: string, log: ReturnType<typeof loggerTo>): ReturnType<typeof loggerTo> {
  const dir = process.env.SEESAW_BENCH_AGENT_TRACE;
  if (!dir) return log;
  const file = join(dir, `${node}.jsonl`);
  const at = (level: keyof typeof log) => (obj: object, msg?: string) => {
    appendFileSync(file, `${JSON.stringify({ at: Date.now(), level, msg, ...obj })}\n`);
    log[level](obj, msg);
  };
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}
