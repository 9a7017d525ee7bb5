/**
 * The rotation engine: the staged rotation state machine (plan → regenerate
 * → publish → test → promote → done), promotion on its own, where a new
 * secret goes (secret sinks: an env file, a callback, stdout), the resume
 * journal, the per-env-file lock and pre-flight checks. The Genesys Cloud
 * side (admin client, twin set-up, incident mode, the `GENESYS_*`
 * configuration) is `./genesys`; the fleet's store as a target is `./fleet`.
 *
 * Genesys Cloud has one secret per OAuth client, so rotation regenerates only
 * the *standby* of two clients with the same roles, proves the new secret
 * with a real token request, publishes it, and only then switches traffic.
 *
 * @example Rotate green while blue serves, against the emulator
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 * import { createGenesysAdminClient } from "@rotating/dual-secret-auth/genesys";
 * import {
 *   createCallbackSink,
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
  type RetireFailpoint,
  type RevokeRequest,
  ROTATION_FAILPOINTS,
  ROTATION_PHASES,
  type RotationCommands,
  type RotationFailpoint,
  type RotationPhaseEvent,
  type RotationPhaseStatus,
  type RotationReport,
  runStagedRotation,
  type StagedRotationOptions,
  TWO_SECRET_FAILPOINTS,
} from "./src/rotation/staged_rotation.ts";
export {
  type EnvFileLoadProofOptions,
  envFileRevokeGate,
  type EnvFileRevokeGateOptions,
} from "./src/rotation/incident.ts";
export {
  checkPresenceGate,
  DEFAULT_GATE_TIMEOUT_MS,
  PresenceGateErrorCode,
  type PresenceGateOptions,
  type PresenceHolder,
  type PresenceHoldReason,
  type PresenceVerdict,
  RevokeGateInUseError,
  RevokeGateUnreadableError,
} from "./src/rotation/presence_gate.ts";
export {
  explainError,
  type OperatorExplanation,
  type OperatorNames,
} from "./src/rotation/describe_error.ts";
export type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  ProviderSecretInfo,
  SecretModel,
  SecretProvider,
} from "./src/rotation/provider.ts";
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
  type PromotionStep,
  runPromotion,
} from "./src/rotation/promotion.ts";
export {
  acquireEnvFileLock,
  type EnvFileLock,
  type FencedLock,
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
  runSteps,
  StepFailedError,
  type StepFlow,
  type StepOutcome,
  type StepRunnerHooks,
  type StepSpec,
  type StepStatus,
} from "./src/rotation/runner.ts";
export {
  createFileJournal,
  createJsonFileJournal,
  createMemoryJournal,
  fingerprintSecret,
  type RotationJournal,
  type RotationJournalRecord,
  type RotationPhase,
  type StepJournal,
} from "./src/rotation/journal.ts";
export { DENO_REQUIRED, DenoRequiredError } from "./src/runtime/deno.ts";

// Types named by the signatures above, from the modules that own them.
export type { Clock } from "./src/clock.ts";
export type { CredentialInput } from "./src/config.ts";
export type {
  AbortedError,
  DualSecretAuthError,
  ErrorCode,
} from "./src/errors.ts";
export type { GenesysAdminClient } from "./src/genesys/admin_client.ts";
export type { Secret } from "./src/secret.ts";
export type { TimerHandle } from "./src/clock.ts";
export type {
  AdminCallOptions,
  OAuthClientInfo,
  RegeneratedOAuthClient,
} from "./src/genesys/admin_client.ts";
export type {
  PresenceCredential,
  PresenceEntry,
  PresenceRecord,
  PresenceState,
} from "./src/sources/presence.ts";
export type { TokenAuthMethod } from "./src/token_endpoint.ts";
