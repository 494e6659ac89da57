// The event-driven switchover against dynalite and s3rver, on a virtual clock: the target restores
// from the pre-copy and waits on the VM item, so the hand-over follows the source's final delta
// without any reconcile; crashes between the announce (IMAGE_READY) and the hand-over lose nothing.
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../node-agent/agent/agent.ts';
import type { FaultHook } from '../../node-agent/agent/faults.ts';
import type { Kernel } from '../../node-agent/kernel/types.ts';
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import type { ProtocolTimings } from '../../shared/domain/protocol.ts';
import { Corrupt } from '../../shared/storage/errors.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { listNodeWork } from '../../shared/storage/switchover.ts';
import { getVm, listVmsForNode, type VmRecord } from '../../shared/storage/vms.ts';
import {
  AGENT_LEASE_MS,
  AGENT_TIMINGS,
  agentRig,
  crashOnceBefore,
  pollUntil,
  quiet,
  runAndOrder,
} from '../support/agents.ts';
import { orderMove } from '../support/orders.ts';

const GUEST = { kind: 'memory', params: { wsPages: 4, rate: 10_000 } };

describe('the event-driven switchover', () => {
  const rig = agentRig(5_000_000);
  const { cycle } = rig;

  /** The targets' 'migrated in' log lines: how each brought its copy up to the final image. */
  const arrivals: { vm: string; phases: { path?: string } }[] = [];
  const log = {
    ...quiet,
    info: (obj: object, msg?: string) => {
      if (msg === 'migrated in') arrivals.push(obj as (typeof arrivals)[number]);
    },
  };
  const arrival = (vm: string) => arrivals.find((a) => a.vm === vm)?.phases.path;

  const anAgent = (
    id: string,
    faults?: FaultHook,
    alterKernel?: (kernel: Kernel) => void,
    timings?: ProtocolTimings,
  ) => rig.anAgent(id, { faults, alterKernel, log, ...(timings ? { timings } : {}) });
  /** Real time passes (the watchers poll in it); the virtual clock stands still. */
  const until = <T>(probe: () => Promise<T | undefined>, ms = 5000) => pollUntil(probe, ms);
  /** The VM is owned by `to` and its kernel runs it (the table's write comes first, then the resume). */
  const movedTo = (id: string, to: Agent) => async () => {
    const vm = await getVm(rig.clients, id);
    const done = vm.owner === to.nodeId && vm.state === 'RUNNING' && !vm.migration;
    return done && to.kernel.running().includes(id) ? vm : undefined;
  };

  const ordered = (vm: string, from: Agent, to: Agent) => runAndOrder(rig, vm, GUEST, from, to);

  /** Orders `vm` from `from` to `to`; it moves with the next fence, and `to` holds exactly the final image, brought up to date by `path`. */
  async function expectHandOver(vm: string, from: Agent, to: Agent, path: 'apply' | 'restore') {
    const before = await ordered(vm, from, to);
    await cycle([from, to], 1);
    const moved = await until(movedTo(vm, to));
    expect(moved.fence).toBe(before.fence + 1);
    expect(await until(async () => arrival(vm))).toBe(path);
    expect(to.kernel.digest(vm)).toBe(moved.image?.digest);
  }

  it('restores the target from the pre-copy while the source runs, then hands over on the final delta without a reconcile', async () => {
    const [a, b] = [anAgent('e1'), anAgent('e2')];
    const before = await ordered('ev', a, b);
    // The source hints the target, pre-copies and announces; the guest keeps running.
    await a.reconcile();
    await a.idle();
    const announced = await getVm(rig.clients, 'ev');
    expect(announced.migration?.precopiedAt).toBe(rig.now);
    expect(announced.migration?.targetReadyAt).toBeUndefined();
    expect(a.kernel.running()).toEqual(['ev']);
    // The hint sits beside the target's VMs: its one reconcile query finds it; VM listings never show it.
    expect((await listNodeWork(rig.clients, 'e2')).inbound).toEqual([
      { vm: 'ev', migration: 'ev-m', from: 'e1', to: 'e2' },
    ]);
    expect(await listVmsForNode(rig.clients, 'e2')).toEqual([]);
    // One reconcile of the target: it restores paused from the announced image and says it is ready.
    const image = announced.image!;
    await b.reconcile();
    await b.idle();
    const prepared = b.holdings().get('ev');
    expect(prepared).toMatchObject({ fence: before.fence + 1, paused: true, migrationId: 'ev-m' });
    expect(b.kernel.digest('ev')).toBe(image.digest);
    expect(b.kernel.running()).toEqual([]);
    // From here on no reconcile runs: the source watches for the target's ready, the target for the
    // final delta, and the VM moves.
    const moved = await until(movedTo('ev', b));
    expect(moved.fence).toBe(before.fence + 1);
    expect(a.kernel.has('ev')).toBe(false);
    expect(b.kernel.running()).toEqual(['ev']);
    // Not ticked on the target yet: exactly the state the source stopped in, reached by applying the
    // final delta to the copy restored from the pre-copy.
    expect(b.kernel.digest('ev')).toBe(moved.image?.digest);
    expect(await until(async () => arrival('ev'))).toBe('apply');
    const record = await until(() => getMigration(rig.clients, 'ev-m'));
    expect(record).toMatchObject({ outcome: 'completed', from: 'e1', to: 'e2' });
    expect(record.bytes?.final).toBeGreaterThan(0);
    // The hint goes at the target's next reconcile.
    await cycle([a, b], 1);
    await until(async () =>
      (await listNodeWork(rig.clients, 'e2')).inbound.length === 0 ? true : undefined,
    );
  });

  it("prepares the target of a VM never imaged: its first move pre-copies once though its memory codes below the round's floor", async () => {
    // 64 pages resident, 4 rewritten: its coded memory is a few KiB, which the convergence check
    // alone would leave to the final delta, and the target would then build the guest while it is down.
    const small = { kind: 'memory', params: { wsPages: 4, rate: 2_000, residentPages: 64 } };
    const [a, b] = [anAgent('p1'), anAgent('p2')];
    const before = await rig.runVm([a, b], { id: 'pf', guest: small, memPages: 64 }, 2);
    expect(before.state).toBe('RUNNING');
    expect(before.image).toBeUndefined();
    await orderMove(rig.clients, {
      vm: 'pf',
      fence: before.fence,
      from: 'p1',
      to: 'p2',
      now: rig.now,
      memPages: 64,
      timings: AGENT_TIMINGS,
    });
    await cycle([a, b], 1);
    const moved = await until(movedTo('pf', b));
    expect(moved.fence).toBe(before.fence + 1);
    expect(await until(async () => arrival('pf'))).toBe('apply');
    expect(b.kernel.digest('pf')).toBe(moved.image?.digest);
    const record = await until(() => getMigration(rig.clients, 'pf-m'));
    expect(record.bytes?.precopy).toBeGreaterThan(0);
    // the round is the floor's worth at most, and the move stays far below the guest's memory
    expect(record.bytes!.precopy + record.bytes!.final).toBeLessThan(8 * PAGE_BYTES);
  });

  it('takes the VM on restart when the target crashes between the announce (IMAGE_READY) and the hand-over', async () => {
    const crashAtTake = crashOnceBefore('takeOwnership');
    const [a, b] = [anAgent('c1'), anAgent('c2', crashAtTake)];
    const before = await ordered('cr', a, b);
    await cycle([a, b], 1);
    // The source stops on the target's ready; the target crashes before taking the VM.
    const handed = await until(async () => {
      const vm = await getVm(rig.clients, 'cr');
      return vm.migration?.phase === 'IMAGE_READY' && b.status() === 'crashed' ? vm : undefined;
    });
    expect(handed).toMatchObject({ owner: 'c1', fence: before.fence });
    expect(a.kernel.has('cr')).toBe(false);
    // A new process for c2, once the crashed one's lease has lapsed, loads the final image and takes it.
    rig.now += AGENT_LEASE_MS + 1;
    const b2 = anAgent('c2');
    await b2.register();
    await cycle([a, b2], 1);
    const moved = await getVm(rig.clients, 'cr');
    expect(moved).toMatchObject({ owner: 'c2', state: 'RUNNING', fence: before.fence + 1 });
    expect(moved.migration).toBeUndefined();
    expect(b2.kernel.running()).toEqual(['cr']);
    expect(a.kernel.has('cr')).toBe(false);
    expect(b2.kernel.digest('cr')).toBe(handed.image?.digest);
  });

  it('hands over when the source crashes right after the announce, and its restart never runs the VM', async () => {
    const crashAtStop = crashOnceBefore('stopSource');
    const [a, b] = [anAgent('s1', crashAtStop), anAgent('s2')];
    const before = await ordered('sc', a, b);
    await cycle([a, b], 1);
    const moved = await until(movedTo('sc', b));
    expect(a.status()).toBe('crashed');
    expect(moved.fence).toBe(before.fence + 1);
    expect(b.kernel.running()).toEqual(['sc']);
    rig.now += AGENT_LEASE_MS + 1;
    const a2 = anAgent('s1');
    await a2.register();
    await cycle([a2, b], 2);
    expect(a2.kernel.has('sc')).toBe(false);
    expect(b.kernel.running()).toEqual(['sc']);
    expect((await getVm(rig.clients, 'sc')).owner).toBe('s2');
  });

  it('keeps the guest running while the target never gets ready, and the expired order ends aborted with the reason', async () => {
    const [a, b] = [anAgent('n1'), anAgent('n2')];
    const before = await ordered('nr', a, b);
    await a.reconcile();
    await a.idle();
    // Only the source runs: however long it waits, it never stops the guest without the target's note.
    for (const ms of [600, 600, 600]) {
      rig.now += ms;
      a.tick();
      await a.heartbeat(ms);
      await a.reconcile();
      await a.idle();
      const vm = await getVm(rig.clients, 'nr');
      expect(vm.migration?.phase).toBe('ORDERED');
      expect(vm.migration?.targetReadyAt).toBeUndefined();
      expect(a.kernel.running()).toEqual(['nr']);
    }
    // Past the order's deadline the source aborts it and goes on running the VM under its own fence
    // (periods short enough that its lease never lapses).
    const deadline = (await getVm(rig.clients, 'nr')).migration!.deadline;
    while (rig.now <= deadline) await cycle([a], 1, 400);
    const kept = await getVm(rig.clients, 'nr');
    expect(kept).toMatchObject({ owner: 'n1', state: 'RUNNING', fence: before.fence });
    expect(kept.migration).toBeUndefined();
    expect(a.kernel.running()).toEqual(['nr']);
    const record = await until(() => getMigration(rig.clients, 'nr-m'));
    expect(record).toMatchObject({
      outcome: 'aborted',
      reason: 'expired before the target said it was restored and waiting',
    });
    expect(record.stoppedAt).toBeUndefined();
    // The target, back, drops nothing it should keep and never runs the VM.
    await cycle([a, b], 1);
    expect(b.kernel.has('nr')).toBe(false);
  });

  it('with a configured ready wait, hands over when the target never gets ready, and the target takes it at its reconcile', async () => {
    const [a, b] = [
      anAgent('w1', undefined, undefined, { ...AGENT_TIMINGS, readyWaitMs: 500 }),
      anAgent('w2'),
    ];
    await ordered('wt', a, b);
    await a.reconcile();
    await a.idle();
    expect(a.kernel.running()).toEqual(['wt']);
    // Only the source runs: past its ready wait it stops and copies anyway.
    rig.now += 600;
    a.tick();
    await a.heartbeat(100);
    await a.reconcile();
    await a.idle();
    const handed: VmRecord = await getVm(rig.clients, 'wt');
    expect(handed.migration?.phase).toBe('IMAGE_READY');
    expect(handed.migration?.targetReadyAt).toBeUndefined();
    await cycle([a, b], 1);
    const moved = await getVm(rig.clients, 'wt');
    expect(moved).toMatchObject({ owner: 'w2', state: 'RUNNING' });
    expect(b.kernel.digest('wt')).toBe(handed.image?.digest);
  });

  it('loads the final image whole when the held copy cannot be brought up to date, and the VM continues where it stopped', async () => {
    const refuse = (kernel: Kernel) => {
      kernel.applyImage = () => Promise.reject(new Corrupt('the copy cannot take this image'));
    };
    const [a, b] = [anAgent('f1'), anAgent('f2', undefined, refuse)];
    await expectHandOver('fb', a, b, 'restore');
  });

  it('applies the final delta again harmlessly when the step repeats', async () => {
    const repeatLoad: FaultHook = (point, ctx) =>
      point === 'loadTarget' && ctx.phase === 'after' ? 'repeat' : undefined;
    const [a, b] = [anAgent('r1'), anAgent('r2', repeatLoad)];
    await expectHandOver('rp', a, b, 'apply');
  });
});
