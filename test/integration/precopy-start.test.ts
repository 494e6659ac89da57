// A guest moved while the last load report is the period it started in (dynalite + s3rver): its
// start-up writes are no dirty rate, so the source pre-copies its memory while it runs and only
// what it rewrote goes after the stop. The kernel counted them as paging before, and such a move
// stopped the guest at once and copied all its memory while it was stopped.
import { describe, expect, it } from 'vitest';
import { PAGE_BYTES } from '../../shared/domain/guests.ts';
import { getMigration } from '../../shared/storage/migrations.ts';
import { type GuestSpec, getVm } from '../../shared/storage/vms.ts';
import { AGENT_TIMINGS, agentRig, pollUntil } from '../support/agents.ts';
import { orderMove } from '../support/orders.ts';

// 64 pages resident (init writes pages 5..63), of which it keeps rewriting 4.
const GUEST = { kind: 'memory', params: { wsPages: 4, rate: 2_000, residentPages: 64 } };
// Its whole working set rewritten every tick.
const HOT = { kind: 'memory', params: { wsPages: 64, rate: 200_000 } };

describe('a move in the period the guest started in', () => {
  const rig = agentRig(9_000_000);
  let agents: ReturnType<typeof rig.anAgent>[] = [];
  const until = <T>(probe: () => Promise<T | undefined>, ms = 8000) =>
    pollUntil(probe, ms, () => rig.cycle(agents, 1));

  /** Starts `id` on the first of two new agents, orders it to the second while the last report is the period it started in; its record once moved. */
  async function moveJustStarted(nodes: [string, string], id: string, guest: GuestSpec, memPages: number) {
    agents = nodes.map((n) => rig.anAgent(n));
    // Step 1 reports before the start (its reconcile starts the VM); step 2 reports the period it
    // started in, which is still the last report when the source acts on the order.
    const before = await rig.runVm(agents, { id, guest, memPages }, 2);
    expect(before.state).toBe('RUNNING');
    await orderMove(rig.clients, {
      vm: id,
      fence: before.fence,
      from: nodes[0],
      to: nodes[1],
      now: rig.now,
      memPages,
      timings: AGENT_TIMINGS,
    });
    await agents[0]!.reconcile();
    await agents[0]!.idle();
    await until(async () => {
      const vm = await getVm(rig.clients, id);
      return vm.owner === nodes[1] && vm.state === 'RUNNING' && !vm.migration ? vm : undefined;
    });
    const record = await until(() => getMigration(rig.clients, `${id}-m`));
    expect(record.outcome).toBe('completed');
    return record.bytes!;
  }

  // Since images are coded (format 4), memory a guest just started with (a word a page, or lines
  // rewritten once) codes to a few KiB: the pre-copy may find it below its floor and leave it all
  // to the final delta, which is then that small. The start-up rule itself is pinned in
  // test/unit/kernel/measure.test.ts; here the move stays small and within its budget.
  it('moves the memory a cool guest started with in a few KiB, leaving only a small final delta', async () => {
    const bytes = await moveJustStarted(['ps1', 'ps2'], 'ps', GUEST, 64);
    expect(bytes.final).toBeGreaterThan(0);
    expect(bytes.precopy + bytes.final).toBeLessThan(8 * PAGE_BYTES);
  });

  it('moves a hot guest once at most, within its budget, in coded bytes', async () => {
    const bytes = await moveJustStarted(['ph1', 'ph2'], 'ph', HOT, 66);
    expect(bytes.final).toBeGreaterThan(0);
    expect(bytes.precopy + bytes.final).toBeLessThanOrEqual(1.1 * 66 * PAGE_BYTES);
    // its pages code to a fraction of their bytes: far less than its memory even moved twice
    expect(bytes.precopy + bytes.final).toBeLessThan(0.5 * 66 * PAGE_BYTES);
  });
});
