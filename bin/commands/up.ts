// `seesaw up` (= `npm start`): the whole cluster on one machine.
import { type Command, InvalidArgumentError } from 'commander';
import { writeUserConfig } from '../connection.ts';

const int = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return n;
};

export function registerUp(program: Command) {
  program
    .command('up')
    .description('start the local cluster: stores, API, balancer, reaper, agents and demo VMs')
    .option('--nodes <n>', 'agent processes (one per node)', int(1), 4)
    .option('--vms <n>', 'demo VMs launched on the first start', int(0), 12)
    .option('--port <port>', 'API port (0 = any free port)', int(0), Number(process.env.PORT ?? 8787))
    .option(
      '--interval <seconds>',
      'seconds between balancing rounds',
      (v) => {
        const n = Number(v);
        if (!(n > 0)) throw new InvalidArgumentError('expected a positive number of seconds');
        return n;
      },
      5,
    )
    .option('--dynamo-port <port>', 'DynamoDB API port (0 = any free port)', int(0), 0)
    .option('--s3-port <port>', 'S3 API port (0 = any free port)', int(0), 0)
    .option('--reset', 'wipe the data directory first', false)
    .option(
      '--qemu',
      'agents also run real x86 VMs under QEMU (needs qemu-system-x86_64), and one demo VM is one',
      false,
    )
    .option('--oidc <issuer>', 'the dashboard signs in through this OpenID Connect issuer (JWTs on /ui/v1)')
    .option('--oidc-client <id>', 'the dashboard’s client id at that issuer', 'seesaw-dashboard')
    .action(async (options) => {
      // --data (global) is where this cluster keeps its data; ./.seesaw by default.
      const dataDir: string = options.data ?? '.seesaw';
      // Loaded on use, so other commands (the agent above all) do not pay for the whole control plane.
      const { startLocalCluster } = await import('../local/cluster.ts');
      const cluster = await startLocalCluster({
        dataDir,
        nodes: options.nodes,
        vms: options.vms,
        port: options.port,
        dynamoPort: options.dynamoPort,
        s3Port: options.s3Port,
        intervalMs: options.interval * 1000,
        reset: options.reset,
        ...(options.qemu ? { qemu: true } : {}),
        ...(options.oidc ? { oidc: { issuer: options.oidc, clientId: options.oidcClient } } : {}),
        say: (line) => console.log(line),
      });
      const { endpoints } = cluster;
      // So that `seesaw …` finds this cluster from any directory.
      writeUserConfig({ data: dataDir, api: endpoints.api });
      console.log(`API        ${endpoints.api}   token ${cluster.token}`);
      console.log(`dashboard  ${endpoints.dashboard}${options.oidc ? '' : `?token=${cluster.token}`}`);
      console.log(`DynamoDB   ${endpoints.dynamodb}   table ${endpoints.table}`);
      console.log(`S3         ${endpoints.s3}   bucket ${endpoints.bucket}`);
      console.log(`data in ${dataDir} (endpoints.json, token, logs); Ctrl-C stops everything`);
      await new Promise<void>((done) => {
        process.once('SIGINT', () => done());
        process.once('SIGTERM', () => done());
      });
      console.log('stopping…');
      await cluster.stop();
      console.log('stopped');
    });
}
