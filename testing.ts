/**
 * Test helpers shipped with the package: a local Genesys Cloud emulator (token
 * endpoint, Platform API, OAuth client admin API, fault injection), five
 * provider emulators (Okta, Microsoft Entra ID, Keycloak, AWS Cognito and
 * Auth0: each a token endpoint and that provider's secret-management API,
 * built on one shared host with a stand-in protected resource, statistics
 * and throttling), and a fake clock. The emulators run on Deno, Node (≥ 20)
 * and Bun; on Node, await `emulator.ready` before reading their URLs.
 *
 * @example
 * ```ts
 * import {
 *   FakeClock,
 *   startGenesysEmulator,
 * } from "@rotating/dual-secret-auth/testing";
 * const clock = new FakeClock();
 * await using emulator = startGenesysEmulator({
 *   clock,
 *   clients: [{ clientId: "id", secret: "secret", tokenLifetimeSeconds: 300 }],
 * });
 * await emulator.ready;
 * if (!emulator.tokenUrl.endsWith("/oauth/token")) throw new Error();
 * ```
 *
 * @module
 */
export {
  type Clock,
  type EmulatorClient,
  type EmulatorClientState,
  type EmulatorFault,
  type EmulatorRole,
  type EmulatorRoleDivision,
  type EmulatorStats,
  type GenesysEmulator,
  type GenesysEmulatorOptions,
  startGenesysEmulator,
  type TimerHandle,
} from "./src/testing/emulator.ts";
export { FakeClock } from "./src/testing/fake_clock.ts";
export type {
  ProviderEmulator,
  ProviderEmulatorOptions,
  ProviderEmulatorStats,
  RateLimit,
  TokenFaultInjection,
} from "./src/testing/providers/common.ts";
export {
  type OktaAdminScope,
  type OktaEmulator,
  type OktaEmulatorAdminToken,
  type OktaEmulatorApp,
  type OktaEmulatorOptions,
  type OktaSecretStatus,
  type OktaSecretView,
  type OktaTokenEndpointAuthMethod,
  startOktaEmulator,
} from "./src/testing/providers/okta.ts";
export {
  type EntraEmulator,
  type EntraEmulatorApplication,
  type EntraEmulatorOptions,
  type EntraEmulatorSecret,
  type EntraGraphPermission,
  type EntraPasswordCredential,
  startEntraEmulator,
} from "./src/testing/providers/entra.ts";
export {
  type KeycloakEmulator,
  type KeycloakEmulatorClient,
  type KeycloakEmulatorOptions,
  type KeycloakRealmManagementRole,
  type KeycloakSecretRotationPolicy,
  type KeycloakSecretState,
  startKeycloakEmulator,
} from "./src/testing/providers/keycloak.ts";
export {
  COGNITO_SECRET_ACTIONS,
  type CognitoAppClient,
  type CognitoEmulator,
  type CognitoEmulatorOptions,
  type CognitoIamPrincipal,
  type CognitoSecret,
  startCognitoEmulator,
} from "./src/testing/providers/cognito.ts";
export {
  type Auth0Api,
  type Auth0Client,
  type Auth0ClientGrant,
  type Auth0Emulator,
  type Auth0EmulatorOptions,
  type Auth0TokenEndpointAuthMethod,
  startAuth0Emulator,
} from "./src/testing/providers/auth0.ts";
