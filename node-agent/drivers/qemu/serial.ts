// The guest's serial console, as the qemu driver sees it. QEMU writes every byte the guest sends
// to a log file synchronously (a `null` chardev with `logfile=`: no reader can refuse a byte, so
// none is retried and logged twice), so once QEMU reports the VM stopped, reading the file to its
// end gives the guest's exact output. Nothing signals new output: readers poll the file.
// The digest folds complete lines into a sha256 chain, so it does not depend on where the output
// was cut by a suspend or a migration: a VM that moved ten times digests like one that never did.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync } from 'node:fs';

/** What of the serial console travels with the VM's saved state. */
export interface SerialState {
  /** Complete lines seen since the VM was created. */
  lines: number;
  /** sha256 chain over those lines (hex; empty before the first line). */
  chain: string;
  /** Bytes after the last newline. */
  partial: string;
  /** The last complete line (without newline). */
  last: string;
}

export const emptySerial = (): SerialState => ({ lines: 0, chain: '', partial: '', last: '' });

/** The chain after one more line (`line` without its newline). */
export const chainLine = (chain: string, line: string) =>
  createHash('sha256').update(chain).update(line).update('\n').digest('hex');

/** The serial state after `text` (a guest's output) on top of `from`. */
export function foldSerial(from: SerialState, text: string): SerialState {
  let { lines, chain, last } = from;
  let rest = from.partial + text;
  for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
    last = rest.slice(0, nl);
    chain = chainLine(chain, last);
    lines++;
    rest = rest.slice(nl + 1);
  }
  return { lines, chain, partial: rest, last };
}

/** The driver's digest of a serial state: line count and the chain, short enough for a table. */
export const serialDigest = (s: SerialState) => `serial:${s.lines}:${s.chain.slice(0, 32)}`;

/** How often `wait` reads the log. */
const POLL_MS = 20;

/**
 * Reads a QEMU serial log file incrementally and keeps the folded state. The log is rotated by
 * `switchTo` (QemuProcess.rotateSerial): the state lives here, so the file only carries the bytes
 * not yet read.
 */
export class SerialLog {
  private offset = 0;
  private state: SerialState;
  /** Output read since the process started (capped), for logs and error messages. */
  tail = '';

  constructor(
    private path: string,
    from: SerialState = emptySerial(),
  ) {
    this.state = { ...from };
  }

  /** Bytes of the current log file read so far: its size on disk as far as this reader knows. */
  get fileBytes(): number {
    return this.offset;
  }

  /**
   * Continues in `next` once QEMU writes there and has closed the current file: reads the current
   * file to its end, removes it, and reads `next` from its start.
   */
  switchTo(next: string) {
    this.sync();
    rmSync(this.path, { force: true });
    this.path = next;
    this.offset = 0;
    this.sync();
  }

  /** Reads whatever the guest wrote since the last call, then the state. */
  sync(): SerialState {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch {
      return this.state; // QEMU has not created it yet
    }
    try {
      const buffer = Buffer.alloc(64 * 1024);
      let text = '';
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        text += buffer.toString('latin1', 0, n);
      }
      if (text) {
        this.state = foldSerial(this.state, text);
        this.tail = (this.tail + text).slice(-4096);
      }
    } finally {
      closeSync(fd);
    }
    return this.state;
  }

  get current(): SerialState {
    return this.state;
  }

  /** Resolves once `until(state)` holds; rejects after `timeoutMs` or when `abort` fires. */
  wait(until: (s: SerialState) => boolean, timeoutMs: number, abort?: Promise<Error>): Promise<SerialState> {
    if (until(this.sync())) return Promise.resolve(this.state);
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        clearInterval(poll);
        if (error) reject(error);
        else resolve(this.state);
      };
      const timer = setTimeout(
        () =>
          done(
            new Error(
              `serial output did not reach the expected state within ${timeoutMs} ms (at line ${this.state.lines}: ${JSON.stringify(this.state.last)})`,
            ),
          ),
        timeoutMs,
      );
      const poll = setInterval(() => {
        if (until(this.sync())) done();
      }, POLL_MS);
      abort?.then((e) => done(e));
    });
  }
}
