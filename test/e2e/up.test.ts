// `seesaw up` end to end: the real CLI starts stores, API, balancer, reaper and agent processes in a
// temporary directory; the skewed demo cluster must balance, and every VM must come through with
// its work intact.
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guestModule } from '../../node-agent/guests/index.ts';
import { createClients } from '../../shared/storage/clients.ts';
import { createImageStore } from '../../shared/storage/image-store.ts';
import { getVm } from '../../shared/storage/vms.ts';
import { clusterForSuite, listNodes, type VmView } from './cluster.ts';

const NODES = 4;
const VMS = 24;
const CV_TARGET = 0.1;
/** Balancing rounds (1 s apart) the cluster gets to reach the target once every agent is up. */
const ROUND_BUDGET = 180;

interface Cluster {
  imbalance: { cv: number };
}

describe('seesaw up', () => {
  const up = clusterForSuite({ nodes: NODES, vms: VMS });
  const call = <T = { items: VmView[] }>(method: string, path: string, body?: unknown) =>
    up.call<T>(method, path, body);
  const until = <T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>) =>
    up.until(what, timeoutMs, probe);

  it('writes endpoints.json (0600, no token) and a private token that the API accepts', async () => {
    const text = readFileSync(join(up.dir, 'endpoints.json'), 'utf8');
    expect(text).not.toContain(up.token);
    expect(statSync(join(up.dir, 'endpoints.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(up.dir, 'token')).mode & 0o777).toBe(0o600);
    const endpoints = JSON.parse(text);
    expect(endpoints).toMatchObject({ api: up.api, table: 'seesaw', bucket: 'seesaw-images' });
    expect(endpoints.dynamodb).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(readFileSync(join(up.dir, 'token'), 'utf8').trim()).toBe(up.token);
    const unauthorised = await fetch(`${up.api}/v1/cluster`);
    expect(unauthorised.status).toBe(401);
  });

  it('refuses a second `seesaw up` in the same folder at once, naming the running cluster and how to stop it', async () => {
    const second = spawn(process.execPath, ['bin/seesaw.js', 'up', '--data', up.dir, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let said = '';
    second.stdout?.on('data', (chunk) => {
      said += chunk;
    });
    second.stderr?.on('data', (chunk) => {
      said += chunk;
    });
    const code = await new Promise<number | null>((r) => {
      const timer = setTimeout(() => second.kill('SIGINT'), 80_000);
      second.once('exit', (c) => {
        clearTimeout(timer);
        r(c);
      });
    });
    expect(code, said).toBe(1);
    expect(said).toContain(
      `a cluster is already running from ${up.dir}: pid ${up.pid}, API port ${new URL(up.api).port}`,
    );
    expect(said).toContain(`kill ${up.pid}`);
    expect(said).not.toMatch(/Database is closed/);
    // The running cluster is untouched.
    expect(up.running()).toBe(true);
    expect(
      (await fetch(`${up.api}/v1/cluster`, { headers: { authorization: `Bearer ${up.token}` } })).status,
    ).toBe(200);
  }, 90_000);

  it(
    'balances the skewed demo cluster below 10% CV and keeps every VM and its work',
    async () => {
      // A short cooldown suits a test that counts rounds in seconds (the default is a minute).
      await call<unknown>('PUT', '/v1/config/balancing', { cooldownMs: 3000 });

      // Every VM runs and shows up in its node's load report; the demo starts badly skewed.
      const reported = async () => {
        const nodes = await listNodes(up);
        const vms = (await call('GET', '/v1/vms?limit=100')).items;
        const running = vms.length === VMS && vms.every((v) => v.state === 'RUNNING');
        const counted = nodes.filter((n) => n.live).reduce((sum, n) => sum + (n.report?.vmCount ?? 0), 0);
        return running && counted === VMS ? await call<Cluster>('GET', '/v1/cluster') : undefined;
      };
      const skewed = await until('the demo VMs to run and report', 120_000, async () => {
        const cluster = await reported();
        return cluster && cluster.imbalance.cv > 0.3 ? cluster : undefined;
      });
      expect(skewed.imbalance.cv).toBeGreaterThan(0.3);

      // Balancing: the CV of live nodes' loads falls below the target within the round budget.
      const reached = await until('CV below 10%', ROUND_BUDGET * 1000, async () => {
        const cluster = await reported();
        return cluster && cluster.imbalance.cv < CV_TARGET ? cluster : undefined;
      });
      expect(reached.imbalance.cv).toBeLessThan(CV_TARGET);
      const migrations = (await call<{ items: unknown[] }>('GET', '/v1/migrations?limit=100')).items;
      expect(migrations.length).toBeGreaterThan(0);

      // Every VM is accounted for: suspend them all and check each image against a guest that never moved.
      const vms = (await call('GET', '/v1/vms?limit=100')).items;
      expect(vms.map((v) => v.id).sort()).toEqual(
        Array.from({ length: VMS }, (_, i) => `demo-${String(i + 1).padStart(2, '0')}`),
      );
      // Quiesce first, as an operator would: no new orders, and none in flight.
      await call<unknown>('PUT', '/v1/config/balancing', { thresholdFactor: 10, margin: 1000 });
      await until('migrations in flight to finish', 60_000, async () => {
        const all = (await call('GET', '/v1/vms?limit=100')).items;
        return all.every((v) => !v.migration && v.state === 'RUNNING') ? true : undefined;
      });
      for (const vm of vms)
        await until(`suspend ${vm.id}`, 30_000, () => call<unknown>('POST', `/v1/vms/${vm.id}/suspend`));
      const suspended = await until('all suspended', 60_000, async () => {
        const all = (await call('GET', '/v1/vms?limit=100')).items;
        return all.every((v) => v.state === 'SUSPENDED') ? all : undefined;
      });

      const endpoints = JSON.parse(readFileSync(join(up.dir, 'endpoints.json'), 'utf8'));
      const clients = createClients({
        tableName: endpoints.table,
        bucketName: endpoints.bucket,
        region: endpoints.region,
        dynamoEndpoint: endpoints.dynamodb,
        s3Endpoint: endpoints.s3,
        credentials: endpoints.credentials,
      });
      const images = createImageStore(clients);
      const cpuGuests = suspended.filter((v) => v.guest.kind === 'cpu');
      expect(cpuGuests.length).toBeGreaterThan(0);
      for (const vm of cpuGuests) {
        // The API shows the digest; the image pointer is on the VM item in the table.
        const item = await getVm(clients, vm.id);
        expect(item.digest).toBe(vm.digest);
        const image = await images.getImage(item.image!.manifest);
        const done = Number(image.manifest.globals.done);
        expect(done).toBeGreaterThan(0);
        expect(await cpuDigestAfter(done)).toBe(item.image!.digest);
      }
    },
    ROUND_BUDGET * 1000 + 180_000,
  );
});

/** The digest of a `cpu` guest that did `units` of work in one place, never suspended or moved. */
async function cpuDigestAfter(units: number): Promise<string> {
  const instance = await WebAssembly.instantiate(await guestModule('cpu'), {});
  const exports = instance.exports as { run(budget: number): number; digest(): bigint };
  for (let left = units; left > 0; ) left -= exports.run(Math.min(left, 1_000_000));
  return BigInt.asUintN(64, exports.digest()).toString(16).padStart(16, '0');
}
