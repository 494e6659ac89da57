// Issue 19, point 1, against the live local cluster: `seesaw nodes drain` on a real `seesaw up`
// cluster with real agents. The draining node's VMs leave, it takes none, and balancing does not
// stall: the imbalance figure (which leaves draining nodes out) falls to the target among the
// other nodes. After `seesaw nodes undrain` the node takes VMs again.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { imbalance } from '../../shared/domain/stats.ts';
import { clusterForSuite, listNodes, listVms, type NodeView } from './cluster.ts';

const NODES = 4;
const VMS = 20;
const CV_TARGET = 0.15;
/** Seconds (balancing rounds, 1 s apart) each phase may take on a loaded machine. */
const PHASE_BUDGET = 240;
const DRAINED = 'node-1';

interface Cluster {
  imbalance: { cv: number };
}
interface Migration {
  vm: string;
  from: string;
  to: string;
  orderedAt: number;
}

describe('draining a node of a live `seesaw up` cluster', () => {
  const cluster = clusterForSuite({ nodes: NODES, vms: VMS });

  /** The CLI as an operator types it, against this cluster's data folder. */
  const seesaw = (...args: string[]) => {
    const run = spawnSync(process.execPath, ['bin/seesaw.js', '--data', cluster.dir, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, `seesaw ${args.join(' ')}: ${run.stderr}`).toBe(0);
    return run.stdout;
  };

  /** Node loads as the cluster reports them, with every VM running and reported by a live node. */
  const settled = async () => {
    const [nodes, vms] = await Promise.all([listNodes(cluster), listVms(cluster)]);
    const reported = nodes.filter((n) => n.live).reduce((sum, n) => sum + (n.report?.vmCount ?? 0), 0);
    const ok = vms.length === VMS && vms.every((v) => v.state === 'RUNNING') && reported === VMS;
    return ok ? { nodes: nodes as (NodeView & { load: number })[], vms } : undefined;
  };

  it(
    'empties the drained node, balances the others to the target, and takes VMs again after undrain',
    async () => {
      const c = cluster;
      // A short cooldown suits a test that counts rounds in seconds (the default is a minute).
      await c.call('PUT', '/v1/config/balancing', { cooldownMs: 3000 });
      const start = await c.until('the demo VMs to run and report', 180_000, settled);
      // Drain node-1, which the demo starts with two thirds of the VMs, while the cluster is skewed.
      const held = start.vms.filter((v) => v.owner === DRAINED).length;
      expect(held).toBeGreaterThan(0);

      const drainedAt = Date.now();
      expect(seesaw('nodes', 'drain', DRAINED)).toContain(`${DRAINED} is draining`);

      // Its VMs leave; no VM is lost on the way; balancing goes on among the other nodes.
      const drained = await c.until(
        `${DRAINED} to empty and the rest to balance`,
        PHASE_BUDGET * 1000,
        async () => {
          const [now, cluster] = await Promise.all([settled(), c.call<Cluster>('GET', '/v1/cluster')]);
          if (!now || now.vms.some((v) => v.owner === DRAINED)) return undefined;
          if (cluster.imbalance.cv >= CV_TARGET) return undefined;
          // The figure and the node list are two reads, and loads move between them (a report a
          // second per node): wait for a pair taken between the same reports. A figure that counted
          // the draining node would never agree, so this still fails on that bug.
          const others = now.nodes.filter((n) => n.id !== DRAINED).map((n) => n.load);
          return Math.abs(cluster.imbalance.cv - imbalance(others).cv) < 0.05
            ? { ...now, cluster }
            : undefined;
        },
      );
      expect(drained.vms.filter((v) => v.owner === DRAINED)).toEqual([]);
      expect(drained.vms).toHaveLength(VMS);
      // The headline figure leaves the draining node out: it is the CV of the other nodes' loads.
      const others = drained.nodes.filter((n) => n.id !== DRAINED);
      expect(drained.nodes.find((n) => n.id === DRAINED)?.draining).toBe(true);
      const expected = imbalance(others.map((n) => n.load)).cv;
      expect(Math.abs(drained.cluster.imbalance.cv - expected)).toBeLessThan(0.05);
      expect(drained.cluster.imbalance.cv).toBeLessThan(CV_TARGET);
      // Counting the empty node at 0 the CV could not have fallen that far.
      expect(imbalance(drained.nodes.map((n) => n.load)).cv).toBeGreaterThan(CV_TARGET);

      // Nothing moved to the draining node after it was drained (some moves may have been ordered
      // in the same instant, so allow a second of slack).
      // The target writes a move's history record once the VM runs there, so under load the last
      // record may land after the cluster looks settled: wait for every drained VM's record.
      const moves = await c.until(`a history record of each VM that left ${DRAINED}`, 30_000, async () => {
        const items = (await c.call<{ items: Migration[] }>('GET', '/v1/migrations?limit=1000')).items;
        return items.filter((m) => m.from === DRAINED).length >= held ? items : undefined;
      });
      expect(moves.filter((m) => m.to === DRAINED && m.orderedAt > drainedAt + 1000)).toEqual([]);

      // Undrain: the node takes VMs again, and the cluster balances over all four nodes.
      const undrainedAt = Date.now();
      expect(seesaw('nodes', 'undrain', DRAINED)).toContain(`${DRAINED} takes VMs again`);
      const back = await c.until(`${DRAINED} to take VMs again`, PHASE_BUDGET * 1000, async () => {
        const now = await settled();
        if (!now?.vms.some((v) => v.owner === DRAINED)) return undefined;
        const cluster = await c.call<Cluster>('GET', '/v1/cluster');
        return cluster.imbalance.cv < CV_TARGET ? { ...now, cluster } : undefined;
      });
      expect(back.nodes.every((n) => !n.draining && n.live)).toBe(true);
      expect(back.cluster.imbalance.cv).toBeLessThan(CV_TARGET);
      const after = (await c.call<{ items: Migration[] }>('GET', '/v1/migrations?limit=100')).items;
      expect(after.some((m) => m.to === DRAINED && m.orderedAt >= undrainedAt - 1000)).toBe(true);
      console.log(
        `drain e2e: ${held} VMs left ${DRAINED} in ${((undrainedAt - drainedAt) / 1000).toFixed(0)} s; CV of the others ${drained.cluster.imbalance.cv.toFixed(3)}; after undrain ${DRAINED} holds ${back.vms.filter((v) => v.owner === DRAINED).length}, CV ${back.cluster.imbalance.cv.toFixed(3)}`,
      );
    },
    3 * PHASE_BUDGET * 1000 + 180_000,
  );
});
