// The agent-to-agent peer channel's HTTP side: hints and bytes between the two agents of a
// migration, never authority. A wake-up names a VM (and its order): the receiver reads that VM's
// item and acts on what the store says, as its watch would. A push carries a final delta's object
// ahead of the wake-up: the receiver keeps it for its apply, which verifies every checksum and the
// table's digest as for bytes read from S3. Every body is bounded and validated; a bad request
// gets an application/problem+json reply and changes nothing.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';

/** A wake-up's JSON body is two ids: anything larger is refused unread. */
export const MAX_WAKE_BYTES = 1024;
/** The largest final delta a peer accepts pushed (a 4 MiB guest's whole memory, uncoded, with room). */
export const MAX_PUSH_BYTES = 8 * 1024 * 1024;

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MANIFEST_KEY = /^images\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/\d+\/\d+\/manifest\.json$/;

export const wakeSchema = z.object({ vm: z.string().regex(ID), order: z.string().regex(ID) }).strict();
export type WakeMessage = z.infer<typeof wakeSchema>;

const pushQuery = z.object({ order: z.string().regex(ID), key: z.string().regex(MANIFEST_KEY) }).strict();

/** A pushed final delta: the object at `key`, for migration `order` of VM `vm`. */
export interface PushedObject {
  vm: string;
  order: string;
  key: string;
  body: Uint8Array;
}

/** What the agent does with a message; 'unknown' means it holds no such VM (404, nothing done). */
export interface PeerHandlers {
  wake(message: WakeMessage): 'accepted' | 'unknown';
  /** 'full': it holds as many pushed bytes as it may (503; the target downloads instead). */
  push(object: PushedObject): 'accepted' | 'unknown' | 'full';
}

const PROBLEM = 'application/problem+json';

function problem(status: 400 | 404 | 413 | 415 | 500 | 503, title: string, detail: string) {
  return new Response(
    JSON.stringify({
      type: `urn:seesaw:peer:${title.toLowerCase().replaceAll(' ', '-')}`,
      title,
      status,
      detail,
    }),
    { status, headers: { 'content-type': PROBLEM } },
  );
}

const tooLarge = (limit: number) => () =>
  problem(413, 'Too large', `bodies here are limited to ${limit} bytes`);

const issues = (error: z.ZodError) =>
  error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');

/** The peer channel's routes (see the file comment); handlers never see an unvalidated message. */
export function peerApp(handlers: PeerHandlers) {
  const app = new Hono();
  app.onError((error) => problem(500, 'Internal error', (error as Error).message));
  app.notFound((c) => problem(404, 'Not found', `no route for ${c.req.method} ${c.req.path}`));
  app.post(
    '/v1/wake',
    bodyLimit({ maxSize: MAX_WAKE_BYTES, onError: tooLarge(MAX_WAKE_BYTES) }),
    async (c) => {
      let body: unknown;
      try {
        body = await c.req.json();
      } catch {
        return problem(400, 'Bad request', 'the body is not JSON');
      }
      const parsed = wakeSchema.safeParse(body);
      if (!parsed.success) return problem(400, 'Bad request', issues(parsed.error));
      if (handlers.wake(parsed.data) === 'unknown')
        return problem(404, 'Not found', `no migration of VM ${parsed.data.vm} here`);
      return c.body(null, 202);
    },
  );
  app.put(
    '/v1/vms/:vm/final-delta',
    bodyLimit({ maxSize: MAX_PUSH_BYTES, onError: tooLarge(MAX_PUSH_BYTES) }),
    async (c) => {
      const vm = c.req.param('vm');
      const query = pushQuery.safeParse(c.req.query());
      if (!ID.test(vm) || !query.success)
        return problem(400, 'Bad request', query.success ? 'bad VM id' : issues(query.error));
      if (!query.data.key.startsWith(`images/${vm}/`))
        return problem(400, 'Bad request', `key ${query.data.key} is not an image of VM ${vm}`);
      if (c.req.header('content-type') !== 'application/octet-stream')
        return problem(415, 'Unsupported media type', 'send the object as application/octet-stream');
      const body = new Uint8Array(await c.req.arrayBuffer());
      if (body.byteLength === 0) return problem(400, 'Bad request', 'empty object');
      const taken = handlers.push({ vm, ...query.data, body });
      if (taken === 'unknown') return problem(404, 'Not found', `no migration of VM ${vm} here`);
      if (taken === 'full') return problem(503, 'Full', 'no room for more pushed objects now');
      return c.body(null, 202);
    },
  );
  return app;
}
