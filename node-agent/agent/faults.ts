// Fault points: the agent calls a hook before and after each protocol step. In production the
// hook is absent; the fault harness uses it to crash a node at a step (throw Crash), freeze it
// (await), or repeat a step (return 'repeat': the step's write is sent twice).
import type { ImageRef } from '../../shared/domain/vm-state.ts';

export type FaultPoint =
  | 'register'
  | 'renew'
  | 'start'
  | 'markRunning'
  | 'recover'
  | 'precopy'
  | 'announce'
  | 'pause'
  | 'finalDelta'
  | 'markImageReady'
  | 'stopSource'
  | 'prepareTarget'
  | 'targetReady'
  | 'loadTarget'
  | 'takeOwnership'
  | 'resumeTarget'
  | 'history'
  | 'checkpoint'
  | 'recordCheckpoint'
  | 'suspend'
  | 'markSuspended'
  | 'delete'
  | 'abort'
  | 'settle'
  | 'fail'
  | 'recordImageRecovery'
  | 'publishInline'
  | 'dropInline';

export interface FaultContext {
  node: string;
  phase: 'before' | 'after';
  vm?: string;
  /** The image a step wrote or recorded (after checkpoint, finalDelta, recordCheckpoint, announce, markImageReady, markSuspended). */
  image?: ImageRef;
  /** The fence the step acted under. */
  fence?: number;
}

export type FaultHook = (
  point: FaultPoint,
  ctx: FaultContext,
) => undefined | 'repeat' | Promise<undefined | 'repeat'>;

/** Thrown by a fault hook to kill the node at a step: the agent stops dead, as a crashed process would. */
export class Crash extends Error {
  override readonly name = 'Crash';
  constructor(where = 'fault') {
    super(`crashed at ${where}`);
  }
}

/** Thrown inside an operation when the node fenced itself meanwhile: the operation must not go on. */
export class Fenced extends Error {
  override readonly name = 'Fenced';
  constructor() {
    super('the node fenced itself while the operation ran');
  }
}
