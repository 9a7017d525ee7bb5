/**
 * The few parts of `@okta/okta-sdk-nodejs` 8.1.0 the tests use. Its own
 * typings pull in `@types/node` 15, whose globals clash with Deno's, so the
 * test type-checks against this subset instead (same names and shapes).
 *
 * @module
 */

/** An `OAuth2ClientSecret` of the SDK's model. */
export interface OAuth2ClientSecret {
  client_secret?: string;
  created?: string;
  id?: string;
  lastUpdated?: string;
  secret_hash?: string;
  status?: "ACTIVE" | "INACTIVE";
}

/** The SDK's paged collection. */
export interface Collection<T> {
  each(iterator: (item: T) => void | boolean | Promise<void>): Promise<void>;
}

/** `client.applicationSSOPublicKeysApi` (object-parameter flavour). */
export interface ApplicationSSOPublicKeysApi {
  listOAuth2ClientSecrets(
    params: { appId: string },
  ): Promise<Collection<OAuth2ClientSecret>>;
  createOAuth2ClientSecret(params: {
    appId: string;
    oAuth2ClientSecretRequestBody?: {
      client_secret?: string;
      status?: "ACTIVE" | "INACTIVE";
    };
  }): Promise<OAuth2ClientSecret>;
  deactivateOAuth2ClientSecret(
    params: { appId: string; secretId: string },
  ): Promise<OAuth2ClientSecret>;
  deleteOAuth2ClientSecret(
    params: { appId: string; secretId: string },
  ): Promise<void>;
}

/** The management client. */
export declare class Client {
  constructor(config: { orgUrl: string; token: string });
  readonly applicationSSOPublicKeysApi: ApplicationSSOPublicKeysApi;
}
