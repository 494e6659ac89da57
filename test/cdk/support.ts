// Synthesizes the Seesaw stack once for a test file (bundling runs esbuild, so share the result
// across assertions) and helpers that read a role's permissions out of the template.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Entries } from '../../cdk/constructs/seesaw-function.ts';
import { SeesawStack } from '../../cdk/seesaw-stack.ts';
import { settingsFromContext } from '../../cdk/settings.ts';

export interface Synthesized {
  app: App;
  stack: SeesawStack;
  template: Template;
  outdir: string;
}

/** Builds the stack from CDK context, as `npm run synth` does, into a temporary cloud assembly. */
export function synthSeesaw(context: Record<string, unknown> = {}, entries?: Partial<Entries>): Synthesized {
  const outdir = mkdtempSync(path.join(tmpdir(), 'seesaw-cdk-'));
  const app = new App({ outdir, context });
  const settings = settingsFromContext(app.node);
  const stack = new SeesawStack(app, settings.stackName, {
    settings,
    ...(entries ? { entries } : {}),
  });
  const template = Template.fromStack(stack);
  return { app, stack, template, outdir };
}

type Json = Record<string, unknown>;
export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Json;
}

export const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];

/** Every statement of every inline policy attached to the role, and of the role itself. */
export function roleStatements(template: Template, roleLogicalId: string): Statement[] {
  const statements: Statement[] = [];
  const policies = template.findResources('AWS::IAM::Policy') as Record<string, { Properties: Json }>;
  for (const policy of Object.values(policies)) {
    const roles = (policy.Properties.Roles ?? []) as { Ref?: string }[];
    if (!roles.some((r) => r.Ref === roleLogicalId)) continue;
    statements.push(...((policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement ?? []));
  }
  return statements;
}

/** The allowed actions of a role, sorted and de-duplicated. */
export const roleActions = (template: Template, roleLogicalId: string): string[] =>
  [...new Set(roleStatements(template, roleLogicalId).flatMap(actionsOf))].sort();

/** Statements of every IAM policy in the template: inline and managed. */
export function allStatements(template: Template): Statement[] {
  const docs: { PolicyDocument: { Statement: Statement[] } }[] = [];
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const resource of Object.values(template.findResources(type)) as { Properties: never }[]) {
      docs.push(resource.Properties);
    }
  }
  return docs.flatMap((d) => d.PolicyDocument.Statement);
}

/** The AwsSolutions pack's unacknowledged findings on the stack, each `<rule> at <paths>`, and whether it passed. */
export function nagFindings(s: Synthesized): { findings: string[]; success: boolean } {
  const report = new AwsSolutionsChecks(s.app).validateScope(s.stack);
  const findings = report.violations.map(
    (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath)}`,
  );
  return { findings, success: report.success };
}

/** Synthesis bundles three functions with esbuild; on a busy machine that takes a while. */
export const SYNTH_TIMEOUT_MS = 240_000;
