// Least privilege, checked two ways: against what each role should be able to do, and against
// what each handler's code can actually call (read from its tree-shaken bundle). Plus cdk-nag.
import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_KEY_PREFIXES } from '../../cdk/constructs/agent-policy.ts';
import { DEFAULT_ENTRIES } from '../../cdk/constructs/seesaw-function.ts';
import { type AwsCalls, awsCallsOf } from './aws-calls.ts';
import {
  actionsOf,
  allStatements,
  nagFindings,
  roleActions,
  roleStatements,
  type Statement,
  SYNTH_TIMEOUT_MS,
  type Synthesized,
  synthSeesaw,
} from './support.ts';

/** The agent process's entry: everything `npx seesaw agent` runs. */
const AGENT_ENTRY = 'bin/commands/agent.ts';

let s: Synthesized;
const calls: Record<'api' | 'balancer' | 'reaper' | 'agent', AwsCalls> = {} as never;
beforeAll(async () => {
  s = synthSeesaw();
  calls.api = await awsCallsOf(DEFAULT_ENTRIES.api);
  calls.balancer = await awsCallsOf(DEFAULT_ENTRIES.balancer);
  calls.reaper = await awsCallsOf(DEFAULT_ENTRIES.reaper);
  calls.agent = await awsCallsOf(AGENT_ENTRY);
}, SYNTH_TIMEOUT_MS);

const FUNCTIONS = ['api', 'balancer', 'reaper'] as const;
type Fn = (typeof FUNCTIONS)[number];
const handlerOf = (fn: Fn) =>
  ({ api: s.stack.api.handler, balancer: s.stack.balancer.handler, reaper: s.stack.reaper.handler })[fn];
const id = (construct: IConstruct) => s.stack.getLogicalId(construct.node.defaultChild as never);
const roleOf = (fn: Fn) => roleStatements(s.template, id(handlerOf(fn).role));
const dataActions = (actions: Iterable<string>) =>
  [...actions].filter((a) => !a.startsWith('logs:') && !a.startsWith('xray:')).sort();
/** The DynamoDB and S3 data actions a function's role allows. */
const dataActionsOf = (fn: Fn) => dataActions(roleActions(s.template, id(handlerOf(fn).role)));
const agentStatements = (): Statement[] =>
  (
    s.template.toJSON().Resources[id(s.stack.agentPolicy.policy)].Properties as {
      PolicyDocument: { Statement: Statement[] };
    }
  ).PolicyDocument.Statement;
const tableArn = () => ({ 'Fn::GetAtt': [id(s.stack.storage.table), 'Arn'] });
const indexArn = (index: string) => ({ 'Fn::Join': ['', [tableArn(), `/index/${index}`]] });
const objectsArn = (prefix: string) => ({
  'Fn::Join': ['', [{ 'Fn::GetAtt': [id(s.stack.storage.bucket), 'Arn'] }, `/${prefix}*`]],
});
const resourcesOf = (statement: Statement) =>
  Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
/** S3 grants as `action prefix` (e.g. `s3:PutObject images/`), the form awsCallsOf reports. */
function objectGrants(statements: Statement[]): string[] {
  const grants: string[] = [];
  for (const statement of statements) {
    for (const action of actionsOf(statement).filter((a) => a.startsWith('s3:'))) {
      const prefixes =
        action === 's3:ListBucket'
          ? ((statement.Condition?.StringLike as Record<string, string[]>)?.['s3:prefix'] ?? ['(any)'])
          : resourcesOf(statement).map((r) =>
              (r as { 'Fn::Join': [string, [unknown, string]] })['Fn::Join'][1][1].slice(1),
            );
      for (const prefix of prefixes) grants.push(`${action} ${prefix.replace(/\*$/, '')}`);
    }
  }
  return grants.sort();
}
const withAction = (statements: Statement[], action: string) =>
  statements.filter((st) => actionsOf(st).includes(action));

describe('every policy in the stack', () => {
  it('names exact actions: no `*` in any action, and a bare `*` resource only for X-Ray', () => {
    const statements = allStatements(s.template);
    expect(statements.length).toBeGreaterThan(10);
    // X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions.
    const xray = ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'];
    for (const statement of statements) {
      for (const action of actionsOf(statement)) expect(action, JSON.stringify(statement)).not.toContain('*');
      if (resourcesOf(statement).includes('*')) expect(actionsOf(statement).sort()).toEqual(xray);
    }
  });

  it('never allows deleting or reconfiguring the table or the bucket', () => {
    const actions = allStatements(s.template).flatMap(actionsOf);
    for (const forbidden of [
      /^dynamodb:(DeleteTable|UpdateTable|CreateTable|Scan|Batch)/,
      /^s3:(DeleteBucket|PutBucket|PutLifecycle)/,
    ]) {
      expect(actions.filter((a) => forbidden.test(a))).toEqual([]);
    }
  });
});

describe('each function role', () => {
  it.each(FUNCTIONS)('%s: allows exactly the DynamoDB calls its handler code can make', (fn) => {
    const granted = dataActionsOf(fn).filter((a) => a.startsWith('dynamodb:'));
    const needed = dataActions(calls[fn].actions).filter((a) => a.startsWith('dynamodb:'));
    expect(granted, `${fn} code reaches ${calls[fn].files.join(', ')}`).toEqual(needed);
  });

  it.each(FUNCTIONS)('%s: queries exactly the indexes its handler code names, never the base table', (fn) => {
    const queried = withAction(roleOf(fn), 'dynamodb:Query').flatMap(resourcesOf);
    expect(queried).not.toContainEqual(tableArn());
    expect(new Set(queried)).toEqual(new Set([...calls[fn].indexes].map(indexArn)));
  });

  it.each(FUNCTIONS)('%s: allows exactly the S3 calls its handler code makes, by key prefix', (fn) => {
    expect(objectGrants(roleOf(fn))).toEqual([...calls[fn].objects].sort());
  });

  it.each(FUNCTIONS)('%s: writes logs only to its own log group', (fn) => {
    const logs = roleOf(fn).filter((st) => actionsOf(st).some((a) => a.startsWith('logs:')));
    expect(logs).toEqual([
      expect.objectContaining({
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [id(handlerOf(fn).logGroup), 'Arn'] },
      }),
    ]);
  });

  it.each(FUNCTIONS)('%s: sends traces to X-Ray and nothing else on *', (fn) => {
    const anywhere = roleOf(fn).filter((st) => resourcesOf(st).includes('*'));
    expect(anywhere.flatMap(actionsOf).sort()).toEqual(['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
  });

  it('balancer: reads, claims, orders and records runs, but cannot delete the table, an item or an object', () => {
    expect(dataActionsOf('balancer')).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
  });

  it('reaper: restarts, settles and removes VM items, and may only list and delete images', () => {
    expect(dataActionsOf('reaper')).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      's3:DeleteObject',
      's3:ListBucket',
    ]);
    expect(objectGrants(roleOf('reaper'))).toEqual(['s3:DeleteObject images/', 's3:ListBucket images/']);
  });

  it('api: stores modules and qemu images, removes deleted VMs’ images, and reads no image', () => {
    const s3 = roleOf('api').filter((st) => actionsOf(st).some((a) => a.startsWith('s3:')));
    expect(s3.map(({ Action, Resource, Condition }) => ({ Action, Resource, Condition }))).toEqual([
      { Action: 's3:PutObject', Resource: objectsArn('modules/'), Condition: undefined },
      {
        Action: ['s3:PutObject', 's3:DeleteObject'],
        Resource: objectsArn('user-images/'),
        Condition: undefined,
      },
      {
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [id(s.stack.storage.bucket), 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['user-images/*'] } },
      },
      {
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [id(s.stack.storage.bucket), 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['images/*'] } },
      },
      { Action: 's3:DeleteObject', Resource: objectsArn('images/'), Condition: undefined },
    ]);
  });
});

describe('the node agent policy', () => {
  it('allows exactly the DynamoDB calls the agent code can make', () => {
    const granted = [...new Set(agentStatements().flatMap(actionsOf))]
      .filter((a) => a.startsWith('dynamodb:'))
      .sort();
    expect(granted).toEqual(dataActions(calls.agent.actions).filter((a) => a.startsWith('dynamodb:')));
  });

  it('reaches items only by key prefix (LeadingKeys): exactly the item kinds the agent code addresses', () => {
    const items = agentStatements().filter((st) => actionsOf(st).some((a) => /Item$/.test(a)));
    const prefixes = new Set<string>();
    for (const statement of items) {
      expect(statement.Resource).toEqual(tableArn());
      const condition = statement.Condition?.['ForAllValues:StringLike'] as
        | Record<string, string[]>
        | undefined;
      expect(condition?.['dynamodb:LeadingKeys'], JSON.stringify(statement)).toBeDefined();
      for (const p of condition?.['dynamodb:LeadingKeys'] ?? []) prefixes.add(p.replace(/\*$/, ''));
    }
    expect(prefixes).toEqual(calls.agent.keyPrefixes);
  });

  it.each([
    ['GetItem', ['NODE#*', 'VM#*', 'CONFIG#*']],
    ['UpdateItem', ['NODE#*', 'VM#*']],
    ['PutItem', ['MIGRATION#*']],
    ['DeleteItem', ['VM#*']],
  ])('allows %s only on items keyed %j', (action, leadingKeys) => {
    const statements = withAction(agentStatements(), `dynamodb:${action}`);
    expect(statements.map((st) => st.Condition)).toEqual([
      { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': leadingKeys } },
    ]);
  });

  it('takes those prefixes from shared/storage/keys.ts', () => {
    expect(AGENT_KEY_PREFIXES).toEqual({
      get: ['NODE#', 'VM#', 'CONFIG#'],
      update: ['NODE#', 'VM#'],
      put: ['MIGRATION#'],
      delete: ['VM#'],
    });
  });

  it('queries the byOwner and byKind indexes only, as the agent code does', () => {
    const queried = withAction(agentStatements(), 'dynamodb:Query').flatMap(resourcesOf);
    expect(new Set(queried)).toEqual(new Set([...calls.agent.indexes].map(indexArn)));
  });

  it('allows exactly the S3 calls the agent code makes: images read, written and deleted; modules and qemu images read', () => {
    expect(objectGrants(agentStatements())).toEqual([...calls.agent.objects].sort());
    expect(objectGrants(agentStatements())).toEqual([
      's3:DeleteObject images/',
      's3:GetObject images/',
      's3:GetObject modules/',
      's3:GetObject user-images/',
      's3:ListBucket images/',
      's3:PutObject images/',
    ]);
  });
});

describe('cdk-nag', () => {
  it('finds nothing unacknowledged in the AwsSolutions pack', () => {
    const { findings, success } = nagFindings(s);
    expect(findings).toEqual([]);
    expect(success).toBe(true);
  });

  it('has a reason for every acknowledged finding', () => {
    const acknowledged: [string, string][] = [];
    const walk = (construct: IConstruct) => {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        acknowledged.push(...Object.entries(entry.data as Record<string, string>));
      }
      construct.node.children.forEach(walk);
    };
    walk(s.stack);
    expect(acknowledged.length).toBeGreaterThan(0);
    for (const [rule, reason] of acknowledged) expect(reason.length, rule).toBeGreaterThan(40);
  });
});
