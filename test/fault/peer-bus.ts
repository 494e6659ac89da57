// The peer channel inside the fault harness: an in-process transport between the schedule's
// agents whose messages, while faults are armed, are lost, repeated, delayed by a few rounds or
// (pushes) spoiled, drawn from their own seeded stream so the schedules' other draws are unchanged.
// A dead agent gets nothing; a frozen one gets its messages once it thaws (a frozen process reads
// no socket). Whatever arrives is only a hint: the invariants must hold whatever the bus does.
import type { PeerHandlers, PushedObject, WakeMessage } from '../../node-agent/peer/app.ts';
import type { PeerTransport } from '../../node-agent/peer/transport.ts';
import { createRng } from '../../shared/domain/rng.ts';
import type { Rng } from '../../shared/domain/types.ts';

type Message = { kind: 'wake'; message: WakeMessage } | { kind: 'push'; object: PushedObject };

/** What the bus did over a schedule (summed into the batch's summary). */
export interface BusCounts {
  sent: number;
  delivered: number;
  lost: number;
  repeated: number;
  delayed: number;
  spoiled: number;
  /** Pushes the receiving agent kept for its apply. */
  pushesTaken: number;
}

export const noBusCounts = (): BusCounts => ({
  sent: 0,
  delivered: 0,
  lost: 0,
  repeated: 0,
  delayed: 0,
  spoiled: 0,
  pushesTaken: 0,
});

export class PeerBus {
  readonly counts = noBusCounts();
  private readonly rng: Rng;
  private readonly listeners = new Map<string, { label: string; handlers: PeerHandlers }>();
  private readonly queue: { at: number; address: string; message: Message }[] = [];
  private next = 0;

  constructor(
    seed: number,
    /** The receiving agent's state: gone (dead: the message is lost) or frozen (held until it thaws). */
    private readonly state: (label: string) => 'up' | 'frozen' | 'dead',
    private readonly round: () => number,
    /** Faults are armed: messages may be lost, repeated, delayed or spoiled. */
    private readonly injecting: () => boolean,
  ) {
    this.rng = createRng(seed ^ 0x5eed_b05);
  }

  /** The transport of one agent process (`label`: its sim's label; a restart listens anew). */
  transport(label: string): PeerTransport {
    let address: string | undefined;
    return {
      listen: async (handlers) => {
        address = `bus://${label}#${++this.next}`;
        this.listeners.set(address, { label, handlers });
        return address;
      },
      wake: async (to, message) => this.send(to, { kind: 'wake', message }),
      push: async (to, object) => this.send(to, { kind: 'push', object }),
      close: async () => {
        if (address) this.listeners.delete(address);
      },
    };
  }

  /** Half the agent processes get 0 (every final delta through S3 and a push), the others the default. */
  inlineImageBytes(): { inlineImageBytes?: number } {
    return this.rng.next() < 0.5 ? { inlineImageBytes: 0 } : {};
  }

  /** Delivers the delayed messages that are due, and those held for an agent that thawed. */
  deliverDue() {
    const due = this.queue.filter((q) => q.at <= this.round());
    for (const q of due) {
      const listener = this.listeners.get(q.address);
      if (listener && this.state(listener.label) === 'frozen') continue;
      this.queue.splice(this.queue.indexOf(q), 1);
      this.deliver(q.address, q.message);
    }
  }

  private send(address: string, message: Message): boolean {
    this.counts.sent += 1;
    if (!this.injecting()) return this.deliverOrHold(address, message);
    const r = this.rng.next();
    if (r < 0.15) {
      this.counts.lost += 1;
      return false;
    }
    if (r < 0.35) {
      this.counts.delayed += 1;
      this.queue.push({ at: this.round() + 1 + Math.floor(this.rng.next() * 8), address, message });
      return true;
    }
    let sent = message;
    if (r < 0.5 && message.kind === 'push') {
      this.counts.spoiled += 1;
      const body = new Uint8Array(message.object.body);
      body[Math.floor(this.rng.next() * body.length)]! ^= 0x5a;
      sent = { kind: 'push', object: { ...message.object, body } };
    }
    const ok = this.deliverOrHold(address, sent);
    if (this.rng.next() < 0.2) {
      this.counts.repeated += 1;
      this.deliverOrHold(address, sent);
    }
    return ok;
  }

  private deliverOrHold(address: string, message: Message): boolean {
    const listener = this.listeners.get(address);
    if (listener && this.state(listener.label) === 'frozen') {
      this.queue.push({ at: this.round(), address, message });
      return true;
    }
    return this.deliver(address, message);
  }

  private deliver(address: string, message: Message): boolean {
    const listener = this.listeners.get(address);
    if (!listener || this.state(listener.label) === 'dead') {
      this.counts.lost += 1;
      return false;
    }
    this.counts.delivered += 1;
    if (message.kind === 'wake') return listener.handlers.wake(message.message) === 'accepted';
    const taken = listener.handlers.push(message.object) === 'accepted';
    if (taken) this.counts.pushesTaken += 1;
    return taken;
  }
}
