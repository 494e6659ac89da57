// The CDK app. Run by the CDK CLI (`npx cdk deploy`, via cdk.json) or directly with tsx
// (`npm run synth`), which needs no AWS account and no network: context then comes from cdk.json
// and `-c key=value` arguments, as the CLI would pass it. cdk-nag's AwsSolutions pack runs on
// every synth and fails it on any unacknowledged finding.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { PROJECT_ROOT } from './constructs/seesaw-function.ts';
import { SeesawStack } from './seesaw-stack.ts';
import { contextFromArgs, settingsFromContext } from './settings.ts';

const runByCli = Boolean(process.env.CDK_OUTDIR);
const app = runByCli
  ? new App()
  : new App({
      outdir: path.join(PROJECT_ROOT, 'cdk.out'),
      context: contextFromArgs(
        process.argv.slice(2),
        (
          JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
            context?: Record<string, unknown>;
          }
        ).context,
      ),
    });

const settings = settingsFromContext(app.node);
new SeesawStack(app, settings.stackName, {
  settings,
  stackName: settings.stackName,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));

const assembly = app.synth();
if (!runByCli) {
  for (const stack of assembly.stacks) {
    console.log(`synthesized ${stack.stackName} -> ${path.relative(PROJECT_ROOT, stack.templateFullPath)}`);
  }
}
