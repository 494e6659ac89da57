// The balancer function and its schedules: with S shards, S schedules fire each round, each
// invoking the same function with {"shard": i, "shards": S}. Runs may overlap; the conditional
// claims on node items keep them from booking a node twice.
import type { Duration } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import { BALANCER_MEMORY_MB, balancerHeapFlags } from '../../functions/balancer/heap.ts';
import { SERVICES } from '../../functions/services.ts';
import { itemStatement, queryStatement } from './data-access.ts';
import { InvokeWithInput, SchedulerInvokeRole } from './invoke-target.ts';
import { type ClusterFunctionProps, SeesawFunction, timeoutWithin } from './seesaw-function.ts';

export interface BalancerScheduleProps extends ClusterFunctionProps {
  rate: Duration;
  shards: number;
  /** The `Cluster` dimension of the metrics each run emits (the stack name). */
  cluster: string;
}

/** The input one shard's schedule sends. */
export interface ShardInput {
  shard: number;
  shards: number;
}

export const shardInputs = (shards: number): ShardInput[] =>
  Array.from({ length: shards }, (_, shard) => ({ shard, shards }));

export class BalancerSchedule extends Construct {
  readonly handler: SeesawFunction;
  readonly schedules: scheduler.Schedule[];

  constructor(scope: Construct, id: string, props: BalancerScheduleProps) {
    super(scope, id);
    const { table } = props;

    this.handler = new SeesawFunction(this, 'Handler', props, {
      service: SERVICES.balancer,
      environment: {
        SEESAW_CLUSTER: props.cluster,
        // Round numbers (which salt the shard hash) advance once per scheduled period.
        SEESAW_BALANCER_ROUND_MS: String(props.rate.toMilliseconds()),
      },
      description: 'Seesaw balancer: one round for one shard',
      memorySize: BALANCER_MEMORY_MB,
      // A large young generation: a run's objects die in one or two scavenges instead of being
      // copied over and over (functions/balancer/heap.ts; the bench measures under the same flags).
      nodeOptions: balancerHeapFlags(BALANCER_MEMORY_MB),
      // A round must finish well inside its period so claims from the last round have lapsed.
      timeout: timeoutWithin(props.rate, 60),
      grants: [
        // Config, run and learning records read back by key; nodes (with their load reports) listed
        // by kind, or by bucket for one shard; claims on node items and orders on VM items (conditional updates); the run record
        // and what the run learned (puts). Nothing is ever deleted.
        itemStatement('ReadItems', table, ['GetItem']),
        queryStatement('ListByKind', table, ['byKind']),
        // A sharded run reads its shard's buckets of nodes alone.
        queryStatement('ListShardNodes', table, ['byBucket']),
        itemStatement('ClaimNodesAndOrderMigrations', table, ['UpdateItem']),
        itemStatement('RecordRuns', table, ['PutItem']),
      ],
    });

    const invoker = new SchedulerInvokeRole(this, 'Invoker', this.handler.function);
    this.schedules = shardInputs(props.shards).map(
      (input) =>
        new scheduler.Schedule(this, `Shard${input.shard}`, {
          description: `Seesaw balancer, shard ${input.shard + 1} of ${input.shards}`,
          schedule: scheduler.ScheduleExpression.rate(props.rate),
          target: new InvokeWithInput(this.handler.function, invoker.role, { ...input }),
        }),
    );
  }
}
