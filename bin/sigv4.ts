// IAM auth for the deployed API: every request signed with SigV4 for `execute-api` by the SDK's
// own signer, with credentials from the SDK's default chain (environment, profile, SSO, process,
// web identity, instance or container role). Loaded only in IAM mode.
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

export interface RequestToSign {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

export type Signer = (request: RequestToSign, signingDate?: Date) => Promise<Record<string, string>>;

/** Returns the request's headers plus host, x-amz-date, x-amz-security-token and authorization. */
export function createSigner(
  region: string,
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider = fromNodeProviderChain(),
  service = 'execute-api',
): Signer {
  // API Gateway needs no x-amz-content-sha256 header (the payload hash is in the signature anyway).
  const signer = new SignatureV4({ service, region, credentials, sha256: Sha256, applyChecksum: false });
  return async (request, signingDate) => {
    const url = new URL(request.url);
    const query: Record<string, string | string[]> = {};
    for (const [key, value] of url.searchParams) {
      const previous = query[key];
      query[key] = previous === undefined ? value : [...[previous].flat(), value];
    }
    const signed = await signer.sign(
      {
        method: request.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers: { ...request.headers, host: url.host },
        ...(request.body !== undefined ? { body: request.body } : {}),
      },
      signingDate ? { signingDate } : {},
    );
    return signed.headers;
  };
}
