/**
 * Staged, verified rotation of Genesys Cloud OAuth client secrets: the admin
 * client for the Platform API's OAuth client endpoints, the rotation state
 * machine (plan → regenerate → publish → test → promote → done), promotion on
 * its own, where a new secret goes (secret sinks), the resume journal, the
 * per-env-file lock, pre-flight checks, and the `GENESYS_*` environment
 * configuration the tasks read.
 *
 * Genesys Cloud has one secret per OAuth client, so rotation regenerates only
 * the *standby* of two clients with the same roles, proves the new secret
 * with a real token request, publishes it, and only then switches traffic.
 *
 * @example Rotate green while blue serves, against the emulator
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 * import {
 *   createCallbackSink,
 *   createGenesysAdminClient,
 *   runStagedRotation,
 * } from "@rotating/dual-secret-auth/rotation";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [
 *     { clientId: "blue-id", secret: "blue-secret" },
 *     { clientId: "green-id", secret: "green-secret" },
 *     { clientId: "admin-id", secret: "admin-secret", permissions: ["oauth:client:edit", "oauth:client:view"] },
 *   ],
 * });
 * await using admin = createDualSecretAuth({
 *   credentials: [{ label: "admin", clientId: "admin-id", clientSecret: "admin-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 * });
 * let published = "";
 * const report = await runStagedRotation({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   active: "blue",
 *   tokenUrl: emulator.tokenUrl,
 *   admin: createGenesysAdminClient({
 *     apiUrl: emulator.apiUrl,
 *     getAccessToken: () => admin.getAccessToken(),
 *   }),
 *   sink: createCallbackSink((update) => void (published = update.label)),
 * });
 * if (published !== "green" || report.active !== "blue") throw new Error();
 * ```
 *
 * @module
 */
export {
  ROTATION_FAILPOINTS,
  ROTATION_PHASES,
  type RotationCommands,
  type RotationFailpoint,
  type RotationPhaseEvent,
  type RotationPhaseStatus,
  type RotationReport,
  runStagedRotation,
  type StagedRotationOptions,
} from "./src/rotation/staged_rotation.ts";
export {
  describe,
  RotationErrorCode,
  RotationJournalError,
  RotationJournalErrorCode,
  safeMessage,
  StagedRotationError,
} from "./src/rotation/rotation_errors.ts";
export {
  PROMOTION_FAILED,
  PromotionError,
  type PromotionOptions,
  type PromotionReport,
  runPromotion,
} from "./src/rotation/promotion.ts";
export {
  acquireEnvFileLock,
  type EnvFileLock,
  type LockHolder,
  lockPathOf,
  ROTATION_LOCKED,
  RotationLockedError,
} from "./src/rotation/lock.ts";
export {
  checkWritable,
  FILE_NOT_WRITABLE,
  FileNotWritableError,
  type WritableFile,
} from "./src/rotation/preflight.ts";
export {
  createCallbackSink,
  createEnvFileSink,
  createPrintSink,
  type EnvFileSinkOptions,
  type SecretSink,
  type SecretUpdate,
  type SecretUpdateHandler,
  setEnvFileValue,
} from "./src/rotation/sinks.ts";
export {
  createFileJournal,
  createMemoryJournal,
  fingerprintSecret,
  type RotationJournal,
  type RotationJournalRecord,
  type RotationPhase,
} from "./src/rotation/journal.ts";
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
export { DENO_REQUIRED, DenoRequiredError } from "./src/runtime/deno.ts";
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
  DEFAULT_RELOAD_WAIT_MS,
  envFileLoadProof,
  type EnvFileLoadProofOptions,
  INCIDENT_STEPS,
  type IncidentAdmin,
  IncidentError,
  IncidentErrorCode,
  type IncidentEvent,
  type IncidentOptions,
  type IncidentReport,
  type IncidentStep,
  type LoadRequest,
  respondToCompromise,
} from "./src/rotation/incident.ts";
