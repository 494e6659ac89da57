// A small QMP (QEMU Machine Protocol) client over a Unix socket. QEMU connects to a socket we
// listen on (`-chardev socket,server=off`), so there is no polling for a socket file to appear:
// `listenQmp` resolves when QEMU has connected and capabilities are negotiated.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

/** A QMP event as QEMU sends it. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** An `error` reply from QEMU: `class` is QEMU's (GenericError, CommandNotFound, …). */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`);
    this.name = 'QmpError';
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly waiters = new Set<{
    match: (e: QmpEvent) => boolean;
    resolve: (e: QmpEvent) => void;
    reject: (error: Error) => void;
  }>();
  private closedError: Error | undefined;
  /** Every event received, oldest first (bounded), for waits that start after the event came. */
  readonly events: QmpEvent[] = [];

  constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('QMP connection closed')));
  }

  /** Sends a command and resolves with its `return` value; rejects with QmpError on `error`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(
        `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`,
      );
    });
  }

  /**
   * Resolves with the first event matching `name` (and `match`), including one already received
   * after index `since` of `events`; rejects after `timeoutMs` or when the connection closes.
   */
  waitEvent(
    name: string,
    {
      timeoutMs,
      match = () => true,
      since,
    }: { timeoutMs: number; match?: (e: QmpEvent) => boolean; since?: number },
  ): Promise<QmpEvent> {
    const test = (e: QmpEvent) => e.event === name && match(e);
    if (since !== undefined) {
      const seen = this.events.slice(since).find(test);
      if (seen) return Promise.resolve(seen);
    }
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const waiter = {
        match: test,
        resolve: (e: QmpEvent) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(e);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(error);
        },
      };
      const timer = setTimeout(
        () => waiter.reject(new Error(`no QMP ${name} event within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.add(waiter);
    });
  }

  close() {
    this.socket.destroy();
  }

  private onData(chunk: string) {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string) {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      this.fail(new Error(`QMP sent a line that is not JSON: ${line.slice(0, 200)}`));
      return;
    }
    if (typeof message.event === 'string') {
      const event = message as unknown as QmpEvent;
      this.events.push(event);
      if (this.events.length > 1000) this.events.splice(0, this.events.length - 1000);
      for (const w of [...this.waiters]) if (w.match(event)) w.resolve(event);
      return;
    }
    const id = message.id === undefined ? undefined : String(message.id);
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (!pending || id === undefined) return; // the greeting, or a reply nobody waits for
    this.pending.delete(id);
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string };
      pending.reject(new QmpError(pending.command, error.class ?? 'Error', error.desc ?? ''));
    } else pending.resolve(message.return);
  }

  private fail(error: Error) {
    if (this.closedError) return;
    this.closedError = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const w of [...this.waiters]) w.reject(error);
  }
}

/**
 * Listens on `path` for one QMP connection from QEMU. `connected` resolves with a client whose
 * capabilities are negotiated; it rejects when `abort` fires first (QEMU exited) or after `timeoutMs`.
 */
export async function listenQmp(path: string): Promise<{
  server: Server;
  connected: (timeoutMs: number, abort: Promise<Error>) => Promise<QmpClient>;
}> {
  const server = createServer();
  server.maxConnections = 1;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  accepted.catch(() => {}); // a server error reaches the caller through `connected`'s race
  server.listen(path);
  await once(server, 'listening');
  return {
    server,
    async connected(timeoutMs, abort) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`QEMU did not connect to QMP within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        const [socket] = await Promise.race([accepted, timeout, abort.then((e) => Promise.reject(e))]);
        const client = new QmpClient(socket);
        await Promise.race([
          client.execute('qmp_capabilities'),
          timeout,
          abort.then((e) => Promise.reject(e)),
        ]);
        return client;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
