// The reaper: restarts VMs of nodes whose lease lapsed, finishes or rolls back migrations stuck
// past their deadline, and removes DELETING VMs (images, then item) whose node died. It emits the
// Seesaw/StuckMigrations metric (CloudWatch EMF) that an alarm watches.
import type { Duration } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import { SERVICES } from '../../functions/services.ts';
import { BUCKET_PREFIXES } from './cluster-storage.ts';
import { itemStatement, queryStatement, removeVmImages } from './data-access.ts';
import { InvokeWithInput, SchedulerInvokeRole } from './invoke-target.ts';
import { acknowledgeObjectPrefixes } from './nag-reasons.ts';
import { type ClusterFunctionProps, SeesawFunction, timeoutWithin } from './seesaw-function.ts';

export interface ReaperScheduleProps extends ClusterFunctionProps {
  rate: Duration;
  /** The `Cluster` dimension of the metrics the reaper emits (the stack name). */
  cluster: string;
}

export class ReaperSchedule extends Construct {
  readonly handler: SeesawFunction;
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: ReaperScheduleProps) {
    super(scope, id);
    const { table, bucket } = props;

    this.handler = new SeesawFunction(this, 'Handler', props, {
      service: SERVICES.reaper,
      environment: { SEESAW_CLUSTER: props.cluster },
      description: 'Seesaw reaper: expired leases, stuck migrations, deleted VMs',
      memorySize: 512,
      timeout: timeoutWithin(props.rate, 120),
      grants: [
        // Nodes and VMs listed by kind; restarts under a new fence, aborted or settled orders
        // (conditional updates), migration history records, and the items of DELETING VMs.
        queryStatement('ListByKind', table, ['byKind']),
        itemStatement('FenceRestartAndRecord', table, ['UpdateItem', 'PutItem', 'DeleteItem']),
        // A dead node's DELETING VMs: the reaper removes their images before their items.
        ...removeVmImages(bucket),
      ],
    });
    acknowledgeObjectPrefixes(
      this.handler.role,
      bucket,
      [BUCKET_PREFIXES.images],
      'the reaper removes the images of VMs deleted while their node was dead',
    );

    const invoker = new SchedulerInvokeRole(this, 'Invoker', this.handler.function);
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'Seesaw reaper',
      schedule: scheduler.ScheduleExpression.rate(props.rate),
      target: new InvokeWithInput(this.handler.function, invoker.role, {}),
    });
  }
}
