/**
 * Fleet mode, engine-agnostic: what every engine (`./kv`, `./redis`) shares —
 * the fleet's options and records, the operator's side (audit, the revoke
 * gate, the shared active label, waiting for the fleet, a lock and a journal
 * in the store, distributing sealed secrets) and the scheduler's (one
 * leader, one cycle per period). An engine entry gives the store
 * (`createKvFleetStore`, `createRedisFleetStore`) and the fleet
 * (`createKvFleet`, `createRedisFleet`); these functions take either.
 *
 * @example The revoke gate on an in-memory store
 * ```ts
 * import {
 *   checkRevokeGate,
 *   createMemoryFleetStore,
 * } from "@rotating/dual-secret-auth/fleet";
 *
 * const target = {
 *   store: createMemoryFleetStore(),
 *   service: "my-service",
 *   by: "ops@host",
 *   now: () => Date.now(),
 * };
 * const day = 24 * 60 * 60 * 1000;
 * const report = await checkRevokeGate(
 *   target,
 *   { label: "blue", clientId: "blue-id" },
 *   day,
 * );
 * if (!report.open) throw new Error("no instance runs, so nothing blocks");
 * ```
 *
 * @module
 */
// The fleet, its options and records (Fleet, FleetOptions, FleetStore,
// InstanceRecord, AuditEntry, ...): the types every fleet entry exports.
export * from "./src/fleet/entry_types.ts";
export type { FleetCredential } from "./src/fleet/link.ts";
export { createFleet, FLEET_DEFAULTS } from "./src/fleet/member.ts";
export { createMemoryFleetStore } from "./src/fleet/store.ts";
export {
  credentialDocument,
  importSealKeyring,
  isSealedCredentialRecord,
  openCredential,
  publishSealedCredential,
  type PublishSealedOptions,
  SEAL_KEY_VARIABLE,
  sealCredential,
  type SealedCredentialRecord,
  type SealKey,
  type SealKeyring,
  serviceNamespace,
  type UnsealProblem,
} from "./src/fleet/distribution.ts";
export {
  acquireStoreLock,
  audit,
  checkRevokeGate,
  createSealedStoreSink,
  createStoreJournal,
  FLEET_ROTATION_LOCKED,
  type FleetTarget,
  type GateBlocker,
  type GateReport,
  type PresenceExpectation,
  readDistributedSecret,
  ROTATION_JOURNAL,
  SEAL_KEY_MISMATCH,
  SealKeyMismatchError,
  setSharedActive,
  type StoreJournalKind,
  type StoreLock,
  StoreLockedError,
  type StoreLockRecord,
  waitForFleet,
  type WaitForFleetOptions,
} from "./src/fleet/operator.ts";
export {
  createStoreTarget,
  type StoreTarget,
  type StoreTargetOptions,
} from "./src/fleet/store_target.ts";
export {
  type FleetProviderFactory,
  genesysAdminProvider,
  type GenesysAdminProviderOptions,
  type OpenedProvider,
  providerAdapterFactory,
  type ProviderAdapterHandle,
  scheduledRotation,
  type ScheduledRotationOptions,
} from "./src/fleet/store_flows.ts";
export {
  type CycleStep,
  parsePeriod,
  readScheduleState,
  type ScheduleOptions,
  type ScheduleState,
  scheduleTick,
  takeLeadership,
  type TickResult,
} from "./src/fleet/schedule.ts";

// Types named by the signatures above, from the modules that own them.
export {
  authenticateStore,
  type AuthenticateStoreOptions,
  type ControlRecordKind,
  keyedSecretHash,
  signRecord,
  verifyRecord,
} from "./src/fleet/control.ts";
export type { DualSecretAuthError } from "./src/errors.ts";
export type { FencedLock } from "./src/rotation/lock.ts";
export type {
  IncidentJournal,
  IncidentJournalRecord,
  IncidentStep,
} from "./src/rotation/incident.ts";
export type { CredentialInput } from "./src/config.ts";
export type {
  LostSecret,
  SecretStraggler,
  StoredSecretIdentity,
  TargetActive,
} from "./src/fleet/operator.ts";
export type {
  IssuedSecret,
  ProviderCallOptions,
  ProviderClientInfo,
  ProviderSecretInfo,
  SecretModel,
  SecretProvider,
} from "./src/rotation/provider.ts";
export type {
  RotationCommands,
  RotationPhaseEvent,
  RotationPhaseStatus,
  RotationReport,
} from "./src/rotation/staged_rotation.ts";
export type { TokenAuthMethod } from "./src/token_endpoint.ts";
export type {
  RotationJournal,
  RotationJournalRecord,
  RotationPhase,
  StepJournal,
} from "./src/rotation/journal.ts";
export type { SecretSink, SecretUpdate } from "./src/rotation/sinks.ts";
export type { MemoryFleetStoreOptions } from "./src/fleet/store.ts";
