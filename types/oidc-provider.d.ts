// Minimal typings for oidc-provider (the local OpenID Connect provider of the browser tests),
// which ships none: the parts test/browser/oidc.test.ts uses.

declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface ClientMetadata {
    client_id: string;
    token_endpoint_auth_method?: string;
    redirect_uris: string[];
    grant_types?: string[];
    response_types?: string[];
  }
  interface Client {
    grantTypeAllowed(type: string): boolean;
  }
  interface Account {
    accountId: string;
    claims(): Promise<Record<string, unknown>>;
  }
  interface Configuration {
    clients?: ClientMetadata[];
    clientBasedCORS?: (ctx: unknown, origin: string, client: Client) => boolean;
    issueRefreshToken?: (ctx: unknown, client: Client, code: unknown) => Promise<boolean> | boolean;
    ttl?: Record<string, number>;
    findAccount?: (ctx: unknown, sub: string) => Promise<Account | undefined>;
    cookies?: { keys: string[] };
  }
  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
  }
}
