// The fault harness's stale reads: a reader's (an agent's, the reaper's, the balancer's) DynamoDB
// reads answer with data that is old by the time the reader acts on it. Only what the store may
// legally do: a consistent read is answered as of when it was served, and its answer is held back
// (the network is slow) until another write on the same item has landed, or for some rounds; an
// index query (eventually consistent) may also be answered with an answer captured earlier. Any
// decision a reader takes from such a read must keep every invariant.
import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { Rng } from '../../shared/domain/types.ts';
import type { Clients } from '../../shared/storage/clients.ts';

/** Which answers a rule makes stale: by what the answer shows of a VM item (any one, for a query). */
export const SIGHTS = [
  'any',
  'ordered',
  'precopied',
  'target-ready',
  'image-ready',
  'no-order',
  'pending',
  'suspending',
  'node',
] as const;
export type Sight = (typeof SIGHTS)[number];

export interface StaleRule {
  /** An agent's label (its node id, or the id with `~twin`), `reaper` or `balancer`. */
  reader: string;
  sees: Sight;
  /** Which reads: item reads (GetItem), index queries, both, or only an agent's watch's item reads. */
  reads: 'get' | 'query' | 'any' | 'watch';
  /** `hold`: the answer comes late; `replay`: an index query gets an answer captured earlier (held if none differs). */
  mode: 'hold' | 'replay';
  /**
   * A held answer comes back as soon as a write on its item lands (`write`), a few ms after it
   * (`soon`: 2-30 ms, while the writer finishes what it was doing), or at the next round after (`round`).
   */
  release: 'write' | 'soon' | 'round';
  /** Chance that a matching read is made stale, between rounds `from` and `to`. */
  p: number;
  from: number;
  to: number;
  /** A held answer comes back after this many rounds at most; a replayed one is at most this old. */
  maxRounds: number;
  /** At most this many stale answers. */
  times: number;
}

type Item = Record<string, unknown>;
type Command = { input: Record<string, unknown> };

interface Held {
  reader: string;
  what: string;
  keys: Set<string>;
  seen: string;
  release: StaleRule['release'];
  until: number;
  /** A write on one of its items landed (release `round` waits for the next round). */
  written: boolean;
  probe: () => Promise<string>;
  resolve: () => void;
}

interface Captured {
  round: number;
  seen: string;
  out: unknown;
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const RELEASES = {
  write: 'a write lands',
  soon: 'a few ms after a write',
  round: 'the round after a write',
} as const;

/** An agent's watch reads the VM item itself, outside any operation (node-agent/agent/agent.ts, `watch`). */
const isWatchRead = (stack: string) =>
  /at findVm [^\n]*\n\s*at [^\n]*node-agent[/\\]agent[/\\]agent\.ts/.test(stack);

const keyOf = (key: unknown) => {
  const k = key as { pk?: unknown; sk?: unknown } | undefined;
  return `${k?.pk}|${k?.sk}`;
};

/** An answer's contents, comparable across reads (binary attributes by length). */
const signature = (items: unknown) =>
  JSON.stringify(items ?? null, (_k, v: unknown) => (v instanceof Uint8Array ? `bin:${v.length}` : v));

function shows(item: Item, sees: Sight): boolean {
  const pk = String(item.pk ?? '');
  if (sees === 'node') return pk.startsWith('NODE#');
  if (!pk.startsWith('VM#')) return false;
  const m = item.migration as { phase?: string; precopiedAt?: number; targetReadyAt?: number } | undefined;
  switch (sees) {
    case 'any':
      return true;
    case 'ordered':
      return m?.phase === 'ORDERED';
    case 'precopied':
      return m?.phase === 'ORDERED' && m.precopiedAt !== undefined;
    case 'target-ready':
      return m?.phase === 'ORDERED' && m.targetReadyAt !== undefined;
    case 'image-ready':
      return m?.phase === 'IMAGE_READY';
    case 'no-order':
      return m === undefined;
    case 'pending':
      return item.state === 'PENDING';
    case 'suspending':
      return item.state === 'SUSPENDING' || item.state === 'SUSPENDED';
  }
}

/** One item, shortly: `v1 RUNNING f3 IMAGE_READY`. */
function describe(item: Item): string {
  const id = String(item.id ?? item.pk ?? '?')
    .split('-')
    .pop();
  const m = item.migration as { phase?: string } | undefined;
  return `${id} ${item.state ?? ''} f${item.fence ?? ''}${m ? ` ${m.phase}` : ''}`.trim();
}

/** The stale reads of one schedule: each reader gets its own clients, the checker reads the table directly. */
export class StaleReads {
  readonly rules: StaleRule[] = [];
  private readonly used = new Map<StaleRule, number>();
  private readonly held = new Set<Held>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly captured = new Map<string, Captured[]>();
  /** Stale answers given, by mode. */
  answered = 0;

  constructor(
    private readonly base: Clients,
    private readonly round: () => number,
    /** Per-read choices: their order follows the process's timing, so not the schedule's own stream. */
    private readonly rng: Rng,
    private readonly note: (what: string) => void,
  ) {}

  arm(rule: StaleRule) {
    this.rules.push(rule);
  }

  readers() {
    return new Set(this.rules.map((r) => r.reader));
  }

  /** `reader`'s clients: its reads may come back stale, and its writes release held answers. */
  clientsFor(reader: string): Clients {
    const inner = this.base.doc;
    const doc = Object.create(inner) as Clients['doc'];
    const send = async (command: Command) => {
      // The call's own frames (up to its first await) say whether an agent's watch sent it.
      const watching = command instanceof GetCommand && isWatchRead(new Error().stack ?? '');
      const out = (await inner.send(command as never)) as Record<string, unknown>;
      if (command instanceof GetCommand || command instanceof QueryCommand)
        return this.answer(reader, command, out, watching);
      this.landed(command.input);
      return out;
    };
    Object.defineProperty(doc, 'send', { value: send });
    return { ...this.base, doc };
  }

  /** Resolves when `reader` has a held answer (at once if it has one): its work is held up. */
  whenHeld(reader: string): Promise<void> {
    if ([...this.held].some((h) => h.reader === reader)) return Promise.resolve();
    const { promise, resolve } = deferred();
    this.waiters.set(reader, [...(this.waiters.get(reader) ?? []), resolve]);
    return promise;
  }

  /** At each round's start: held answers whose time is up, or whose item changed, come back. */
  async tick() {
    this.waiters.clear();
    const round = this.round();
    await Promise.all(
      [...this.held].map(async (h) => {
        if (round >= h.until) this.letGo(h, 'time up');
        else if (h.written || (await h.probe()) !== h.seen) this.letGo(h, 'the item changed');
      }),
    );
  }

  /** Every held answer comes back (the schedule quiesces or ends); no more stale reads. */
  releaseAll() {
    this.rules.length = 0;
    for (const h of this.held) this.letGo(h, 'quiescing');
  }

  heldCount() {
    return this.held.size;
  }

  private letGo(h: Held, why: string) {
    if (!this.held.delete(h)) return;
    this.note(`back ${h.reader} ${h.what} (${why})`);
    h.resolve();
  }

  /** A write through a reader's clients landed: answers held on its item may come back. */
  private landed(input: Record<string, unknown>) {
    const key = keyOf(input.Key ?? input.Item);
    for (const h of this.held) {
      if (!h.keys.has(key)) continue;
      h.written = true;
      if (h.release === 'write') this.letGo(h, 'a write landed');
      if (h.release === 'soon') {
        const ms = 2 + Math.floor(this.rng.next() * 29);
        setTimeout(() => this.letGo(h, `${ms} ms after a write landed`), ms);
      }
    }
  }

  private rule(reader: string, items: Item[], query: boolean, watching: boolean): StaleRule | undefined {
    const round = this.round();
    for (const rule of this.rules) {
      if (rule.reader !== reader || round < rule.from || round > rule.to) continue;
      if ((this.used.get(rule) ?? 0) >= rule.times) continue;
      if (rule.mode === 'replay' && !query) continue;
      if (rule.reads === 'watch' ? !watching : rule.reads !== 'any' && (rule.reads === 'query') !== query)
        continue;
      if (!items.some((item) => shows(item, rule.sees))) continue;
      if (this.rng.next() >= rule.p) continue;
      this.used.set(rule, (this.used.get(rule) ?? 0) + 1);
      return rule;
    }
    return undefined;
  }

  private async answer(
    reader: string,
    command: GetCommand | QueryCommand,
    out: Record<string, unknown>,
    watching: boolean,
  ) {
    const query = command instanceof QueryCommand;
    const items = (query ? (out.Items ?? []) : out.Item ? [out.Item] : []) as Item[];
    const seen = signature(query ? out.Items : out.Item);
    const consistent = command.input.ConsistentRead === true;
    const id = `${reader}|${JSON.stringify(command.input)}`;
    const rule = this.rule(reader, items, query, watching);
    if (query && !consistent) {
      const history = this.captured.get(id) ?? [];
      if (rule?.mode === 'replay') {
        const old = history.find((c) => c.round >= this.round() - rule.maxRounds && c.seen !== seen);
        if (old) {
          this.answered += 1;
          this.note(
            `replay ${reader} query (${(old.out as { Items?: Item[] }).Items?.map(describe).join(', ')})`,
          );
          return structuredClone(old.out);
        }
      }
      history.push({ round: this.round(), seen, out: structuredClone(out) });
      this.captured.set(id, history.slice(-12));
    }
    if (!rule) return out;
    this.answered += 1;
    const what = query
      ? `query (${items.map(describe).join(', ') || 'empty'})`
      : `get ${items.map(describe).join('') || keyOf(command.input.Key)}`;
    this.note(`hold ${reader} ${what} until ${RELEASES[rule.release]}`);
    const input = { ...command.input };
    const { promise, resolve } = deferred();
    const held: Held = {
      reader,
      what,
      keys: new Set(query ? items.map((i) => keyOf(i)) : [keyOf(command.input.Key)]),
      seen,
      release: rule.release,
      until: this.round() + rule.maxRounds,
      written: false,
      resolve,
      probe: async () => {
        const again = (await this.base.doc.send(
          (query ? new QueryCommand(input as never) : new GetCommand(input as never)) as never,
        )) as Record<string, unknown>;
        return signature(query ? again.Items : again.Item);
      },
    };
    this.held.add(held);
    for (const wake of this.waiters.get(reader) ?? []) wake();
    this.waiters.delete(reader);
    await promise;
    return out;
  }
}
