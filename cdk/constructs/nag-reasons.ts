// cdk-nag acknowledgements (CDK's Validations API), each scoped to the exact finding it excuses
// and carrying its reason.
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { IConstruct } from 'constructs';

export function acknowledge(construct: IConstruct, id: string, reason: string): void {
  Validations.of(construct).acknowledge({ id, reason });
}

function logicalId(resource: IConstruct): string {
  const element = resource.node.defaultChild as CfnElement;
  return Stack.of(element).resolve(element.logicalId);
}

/** The `<LogicalId.Arn>` form cdk-nag uses for a resource's ARN in IAM findings. */
export const arnToken = (resource: IConstruct) => `<${logicalId(resource)}.Arn>`;

/** The `<LogicalId>` form cdk-nag uses for a resource's Ref in IAM findings. */
export const refToken = (resource: IConstruct) => `<${logicalId(resource)}>`;

/**
 * IAM5 for `bucket/<prefix>/*` resources: object keys under a prefix are content-, fence- and
 * sequence-addressed, so they cannot be listed in a policy ahead of time.
 */
export function acknowledgeObjectPrefixes(
  construct: IConstruct,
  bucket: s3.IBucket,
  prefixes: readonly string[],
  why: string,
): void {
  for (const prefix of prefixes) {
    acknowledge(
      construct,
      `AwsSolutions-IAM5[Resource::${arnToken(bucket)}/${prefix}*]`,
      `Object keys under ${prefix} are content-, fence- and sequence-addressed and not known in advance; ` +
        `the wildcard is the key suffix under that one prefix (${why}).`,
    );
  }
}
