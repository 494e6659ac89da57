// The agent-to-agent peer channel against dynalite and s3rver, over real HTTP on 127.0.0.1: a
// migration whose two agents wake each other and push the final delta; one whose target never
// gets a wake-up (its watch carries it); pushed bytes that are corrupt (the apply refuses them and
// the target loads from S3); and wake-ups that are forged or repeated (a read at most, no change).
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { type Agent, WAKE_GAP_MS } from '../../node-agent/agent/agent.ts';
import type { PushedObject } from '../../node-agent/peer/app.ts';
import { sendWake } from '../../node-agent/peer/client.ts';
import { httpPeer, type PeerTransport } from '../../node-agent/peer/transport.ts';
import type { Clients } from '../../shared/storage/clients.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { getNode } from '../../shared/storage/nodes.ts';
import { getVm } from '../../shared/storage/vms.ts';
import { agentRig, pollUntil, quiet, runAndOrder } from '../support/agents.ts';

const GUEST = { kind: 'memory', params: { wsPages: 4, rate: 10_000 } };

/** An HTTP peer whose sends can be dropped or spoiled, and counted. */
function tapped(options: { dropWakes?: boolean; corrupt?: boolean } = {}) {
  const inner = httpPeer({ host: '127.0.0.1' });
  const sent = { wakes: 0, pushes: 0, taken: 0 };
  const transport: PeerTransport = {
    listen: (handlers) => inner.listen(handlers),
    close: () => inner.close(),
    async wake(address, message) {
      sent.wakes += 1;
      return options.dropWakes ? false : inner.wake(address, message);
    },
    async push(address, object) {
      sent.pushes += 1;
      const body = new Uint8Array(object.body);
      // a byte in the middle of the object (the blocks, past the manifest's start) flipped
      if (options.corrupt) body[body.length >> 1]! ^= 0xff;
      const ok = await inner.push(address, { ...object, body } satisfies PushedObject);
      if (ok) sent.taken += 1;
      return ok;
    },
  };
  return { transport, sent };
}

describe('the peer channel between two agents', () => {
  const rig = agentRig(9_000_000);
  const transports: PeerTransport[] = [];
  afterAll(async () => {
    await Promise.all(transports.map((t) => t.close()));
  });

  /** Each side's phase lines ('image handed over', 'migrated in') and the warnings, by VM. */
  const lines: { msg: string; vm?: string; phases?: Record<string, unknown> }[] = [];
  const log = {
    ...quiet,
    info: (obj: object, msg?: string) => lines.push({ msg: msg ?? '', ...(obj as object) }),
    warn: (obj: object, msg?: string) => lines.push({ msg: msg ?? '', ...(obj as object) }),
  };
  const phases = (vm: string, msg: string) => lines.find((l) => l.vm === vm && l.msg === msg)?.phases;

  /** An agent with a tapped peer channel; final deltas go through S3 and are pushed, not in the item. */
  const anAgent = (id: string, tap = tapped(), clients?: Clients) => {
    transports.push(tap.transport);
    return rig.anAgent(id, {
      log,
      peer: tap.transport,
      inlineImageBytes: 0,
      pushFinalDelta: true,
      ...(clients ? { clients } : {}),
    });
  };

  const movedTo = (id: string, to: Agent) => async () => {
    const vm = await getVm(rig.clients, id);
    const done = vm.owner === to.nodeId && vm.state === 'RUNNING' && !vm.migration;
    return done && to.kernel.running().includes(id) ? vm : undefined;
  };
  const until = <T>(probe: () => Promise<T | undefined>) => pollUntil(probe, 8000);

  it('advertises its address in the node item, and moves a VM with wake-ups and the pushed final delta', async () => {
    const [ta, tb] = [tapped(), tapped()];
    const [a, b] = [anAgent('pa', ta), anAgent('pb', tb)];
    const before = await runAndOrder(rig, 'pv', GUEST, a, b);
    expect((await getNode(rig.clients, 'pa')).peerUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    await rig.cycle([a, b], 1);
    const moved = await until(movedTo('pv', b));
    expect(moved.fence).toBe(before.fence + 1);
    // the target woke the source at its note, the source woke the target at the hand-over
    expect(tb.sent.wakes).toBeGreaterThanOrEqual(1);
    expect(ta.sent.wakes).toBeGreaterThanOrEqual(1);
    // the final delta went to S3 and to the target, which applied it from the pushed bytes
    expect(ta.sent.taken).toBe(1);
    const target = await until(async () => phases('pv', 'migrated in'));
    expect(target).toMatchObject({ path: 'apply', pushed: true });
    expect(phases('pv', 'image handed over')).toMatchObject({ pushed: true, inlineBytes: 0 });
    // the digest continues: the copy is exactly the state the source stopped in
    expect(b.kernel.digest('pv')).toBe(moved.image?.digest);
    expect(await until(() => getMigration(rig.clients, 'pv-m'))).toMatchObject({ outcome: 'completed' });
    // and it runs on from there on its new node
    await rig.cycle([a, b], 2);
    expect(b.kernel.running()).toEqual(['pv']);
    expect(a.kernel.has('pv')).toBe(false);
  });

  it('completes through the watch when the target never gets a wake-up', async () => {
    const [ta, tb] = [tapped({ dropWakes: true }), tapped()];
    const [a, b] = [anAgent('wa', ta), anAgent('wb', tb)];
    const before = await runAndOrder(rig, 'wv', GUEST, a, b);
    await rig.cycle([a, b], 1);
    const moved = await until(movedTo('wv', b));
    expect(moved.fence).toBe(before.fence + 1);
    expect(ta.sent.wakes).toBeGreaterThanOrEqual(1);
    const target = await until(async () => phases('wv', 'migrated in'));
    expect(target).toMatchObject({ path: 'apply', woke: 'watch' });
    expect(b.kernel.digest('wv')).toBe(moved.image?.digest);
  });

  it('falls back to S3 when the pushed bytes are corrupt: the VM runs on with the right digest', async () => {
    const [ta, tb] = [tapped({ corrupt: true }), tapped()];
    const [a, b] = [anAgent('ca', ta), anAgent('cb', tb)];
    const before = await runAndOrder(rig, 'cv', GUEST, a, b);
    await rig.cycle([a, b], 1);
    const moved = await until(movedTo('cv', b));
    expect(moved.fence).toBe(before.fence + 1);
    expect(ta.sent.taken).toBe(1);
    const target = await until(async () => phases('cv', 'migrated in'));
    expect(target).toMatchObject({ path: 'restore' });
    expect(target?.pushed).toBeUndefined();
    expect(
      lines.some(
        (l) => l.vm === 'cv' && l.msg === 'final image not applied to the held copy; loading it whole',
      ),
    ).toBe(true);
    expect(moved.state).toBe('RUNNING');
    expect(b.kernel.digest('cv')).toBe(moved.image?.digest);
  });

  it('answers forged or repeated wake-ups with at most one read per gap and changes nothing; an unknown VM costs none', async () => {
    let reads: number[] = [];
    const counting: Clients = {
      ...rig.clients,
      doc: {
        send: (command: unknown) => {
          if (command instanceof GetCommand && String(command.input.Key?.pk).startsWith('VM#'))
            reads.push(performance.now());
          return rig.clients.doc.send(command as never);
        },
      } as unknown as Clients['doc'],
    };
    const a = anAgent('fa', tapped(), counting);
    const before = await rig.runVm([a], { id: 'fv', guest: GUEST, memPages: 16 }, 3);
    const url = (await getNode(rig.clients, 'fa')).peerUrl!;
    reads = [];
    // fifty at once, as a flood or a peer's retries would come
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => sendWake(url, { vm: 'fv', order: 'forged' })),
    );
    expect(answers.every((ok) => ok)).toBe(true);
    await new Promise((r) => setTimeout(r, 3 * WAKE_GAP_MS));
    await a.idle();
    // served at once, then at most one read per gap while they keep coming: far fewer than fifty
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.length).toBeLessThan(10);
    for (let i = 1; i < reads.length; i += 1)
      expect(reads[i]! - reads[i - 1]!).toBeGreaterThanOrEqual(WAKE_GAP_MS - 1);
    const after = await getVm(rig.clients, 'fv');
    expect({
      owner: after.owner,
      fence: after.fence,
      state: after.state,
      migration: after.migration,
    }).toEqual({
      owner: before.owner,
      fence: before.fence,
      state: before.state,
      migration: before.migration,
    });
    expect(a.kernel.running()).toEqual(['fv']);
    reads = [];
    expect(await sendWake(url, { vm: 'nobody', order: 'x' })).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(reads).toEqual([]);
  });
});
