/**
 * Token endpoint presets for Okta, Microsoft Entra ID, Keycloak, AWS Cognito
 * and Auth0: each derives the token URL, and the scope or parameters the
 * provider requires, from the values its console shows. Spread one into
 * `createDualSecretAuth`'s options beside the credentials. Genesys Cloud
 * needs none: the core's `environment` option does the same for it.
 *
 * Each provider's admin client behind the rotation engine's provider port
 * (`SecretProvider`) is here too: {@linkcode oktaSecretProvider},
 * {@linkcode entraSecretProvider} and {@linkcode cognitoSecretProvider}
 * (two secrets on one client), {@linkcode auth0SecretProvider} (twin
 * clients) and {@linkcode keycloakSecretProvider} (two secrets with its
 * rotation policy, or twin clients). Each module is loaded only by the application
 * that imports it.
 *
 * @example Okta, with both secrets of one client
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { okta } from "@rotating/dual-secret-auth/providers";
 *
 * await using auth = createDualSecretAuth({
 *   ...okta({ domain: "dev-123456.okta.com", authServerId: "default", scope: "orders.read" }),
 *   credentials: [
 *     { label: "a", clientId: "0oa1", clientSecret: "first-secret" },
 *     { label: "b", clientId: "0oa1", clientSecret: "second-secret", authMethod: "client_secret_post" },
 *   ],
 * });
 * ```
 *
 * @module
 */
export {
  auth0,
  type Auth0PresetOptions,
  cognito,
  type CognitoPresetOptions,
  entra,
  type EntraPresetOptions,
  keycloak,
  type KeycloakPresetOptions,
  okta,
  type OktaPresetOptions,
  type ProviderPreset,
  type Scope,
} from "./src/providers/presets.ts";
export {
  type AdminIoOptions,
  ProviderApiError,
  type ProviderErrorCodes,
  type ProviderErrorKind,
} from "./src/providers/admin_http.ts";
export {
  OktaErrorCode,
  oktaSecretProvider,
  type OktaSecretProviderOptions,
} from "./src/providers/okta.ts";
export {
  ENTRA_PROPAGATION_MS,
  EntraErrorCode,
  entraSecretProvider,
  type EntraSecretProviderOptions,
} from "./src/providers/entra.ts";
export {
  CognitoErrorCode,
  cognitoSecretProvider,
  type CognitoSecretProviderOptions,
} from "./src/providers/cognito.ts";
export type { AwsCredentials } from "./src/providers/sigv4.ts";
export {
  AUTH0_PROPAGATION_MS,
  Auth0ErrorCode,
  auth0SecretProvider,
  type Auth0SecretProviderOptions,
} from "./src/providers/auth0.ts";
export {
  KeycloakErrorCode,
  keycloakSecretProvider,
  type KeycloakSecretProviderOptions,
} from "./src/providers/keycloak.ts";

// Types named by the signatures above, from the modules that own them.
export type { Clock, TimerHandle } from "./src/clock.ts";
export type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  ProviderSecretInfo,
  SecretModel,
  SecretProvider,
} from "./src/rotation/provider.ts";
export type { DualSecretAuthError } from "./src/errors.ts";
export type { RetryOptions } from "./src/retry.ts";
export type { Secret } from "./src/secret.ts";
