/**
 * Genesys Cloud: the admin client for the Platform API's OAuth client
 * endpoints (read, regenerate, create, enable/disable), its typed errors,
 * setting up the twin of an OAuth client (same roles, token lifetime), the
 * incident response for a leaked secret, and the `GENESYS_*` environment
 * configuration the tasks read. The rotation engine that drives the admin
 * client is `./rotation`.
 *
 * @example Read an OAuth client's name and roles from the emulator
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret" },
 *     { clientId: "admin-id", secret: "admin-secret", permissions: ["oauth:client:view"] },
 *   ],
 * });
 * await using admin = createDualSecretAuth({
 *   credentials: [{ label: "admin", clientId: "admin-id", clientSecret: "admin-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 * });
 * const client = createGenesysAdminClient({
 *   apiUrl: emulator.apiUrl,
 *   getAccessToken: () => admin.getAccessToken(),
 * });
 * const info = await client.getClient("blue-id");
 * if (info.id !== "blue-id") throw new Error();
 * ```
 *
 * @module
 */
export {
  type AdminCallOptions,
  type CreatedOAuthClient,
  createGenesysAdminClient,
  type GenesysAdminClient,
  type GenesysAdminClientOptions,
  type GenesysOAuthClientAdmin,
  type NewOAuthClient,
  type OAuthClientDetails,
  type OAuthClientInfo,
  type OAuthClientState,
  type OAuthRoleDivision,
  type RegeneratedOAuthClient,
} from "./src/genesys/admin_client.ts";
export { genesysSecretProvider } from "./src/genesys/secret_provider.ts";
export {
  AdminForbiddenError,
  AdminRateLimitedError,
  AdminUnauthorizedError,
  GenesysApiError,
  type GenesysApiErrorDetails,
  GenesysErrorCode,
  OAuthClientNotFoundError,
  PlatformApiRequestError,
  PlatformApiUnavailableError,
  RoleGrantRefusedError,
} from "./src/genesys/errors.ts";
export {
  createEnvFileClientSink,
  setUpTwinClient,
  type TwinDefinition,
  twinName,
  TwinSetupError,
  TwinSetupErrorCode,
  type TwinSetupEvent,
  type TwinSetupOptions,
  type TwinSetupReport,
  type TwinSetupStep,
} from "./src/rotation/twin_setup.ts";
export {
  createFileIncidentJournal,
  DEFAULT_RELOAD_WAIT_MS,
  envFileLoadProof,
  type EnvFileLoadProofOptions,
  INCIDENT_STEPS,
  type IncidentAdmin,
  IncidentError,
  IncidentErrorCode,
  type IncidentEvent,
  type IncidentJournal,
  type IncidentJournalRecord,
  type IncidentOptions,
  type IncidentReport,
  type IncidentStep,
  isIncidentJournalRecord,
  type LoadRequest,
  respondToCompromise,
} from "./src/rotation/incident.ts";
export {
  ACTIVE_ENV_VAR,
  clientIdEnvVar,
  clientSecretEnvVar,
  ENV_CONFIG_INVALID,
  EnvConfigError,
  type EnvProblem,
  readRotationEnv,
  type ReadRotationEnvOptions,
  readSetupEnv,
  ROTATION_ENV_VARS,
  ROTATION_LABELS,
  type RotationEnvConfig,
  type RotationLabel,
  type SetupEnvConfig,
} from "./src/rotation/env_config.ts";

// Types named by the signatures above, from the modules that own them.
export type { Clock } from "./src/clock.ts";
export type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  ProviderSecretInfo,
  SecretModel,
  SecretProvider,
} from "./src/rotation/provider.ts";
export type { CredentialInput } from "./src/config.ts";
export type { DualSecretAuthError } from "./src/errors.ts";
export type { RetryOptions } from "./src/retry.ts";
export type { SecretSink } from "./src/rotation/sinks.ts";
export type { StepFailedError, StepFlow } from "./src/rotation/runner.ts";
export type {
  RotationJournalRecord,
  RotationPhase,
  StepJournal,
} from "./src/rotation/journal.ts";
export type { Secret } from "./src/secret.ts";
export type { TimerHandle } from "./src/clock.ts";
export type { SecretUpdate } from "./src/rotation/sinks.ts";
export type { TokenAuthMethod } from "./src/token_endpoint.ts";
