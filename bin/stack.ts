// `--stack NAME`: the API URL from a deployed stack's outputs, read with the ordinary SDK client in
// the usual region and profile (AWS_REGION, AWS_PROFILE, ~/.aws/config). Loaded only when used.
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';

/** The output that holds the HTTP API's base URL (see cdk/seesaw-stack.ts). */
export const API_URL_OUTPUT = 'ApiUrl';

export async function stackApiUrl(stack: string, region: string | undefined): Promise<string> {
  const client = new CloudFormationClient(region ? { region } : {});
  try {
    const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stack }));
    const outputs = Stacks?.[0]?.Outputs ?? [];
    const url = outputs.find((o) => o.OutputKey === API_URL_OUTPUT)?.OutputValue;
    if (!url)
      throw new Error(
        `stack ${stack} has no ${API_URL_OUTPUT} output (outputs: ${outputs.map((o) => o.OutputKey).join(', ') || 'none'}); is it a Seesaw stack?`,
      );
    return url;
  } catch (error) {
    const e = error as Error & { name?: string };
    if (e.message.startsWith(`stack ${stack} has no`)) throw e;
    const where = (await client.config.region().catch(() => undefined)) ?? 'no region';
    throw new Error(`cannot read the outputs of stack ${stack} (${where}): ${e.name}: ${e.message}`);
  } finally {
    client.destroy();
  }
}
