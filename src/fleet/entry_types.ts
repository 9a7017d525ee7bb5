/**
 * The types every fleet entry point (`./fleet`, `./kv`, `./redis`)
 * re-exports, because the signatures of its functions name them: the fleet
 * and its records, the shared state the fleet implements, and what they
 * refer to (clock, retry options, secret). One list, re-exported by each
 * entry with `export *`, so the three cannot drift apart.
 *
 * @module
 */
export type { Fleet, FleetSummary } from "./link.ts";
export type { FleetOptions } from "./member.ts";
export type {
  ActiveRecord,
  AuditEntry,
  ControlStore,
  Fence,
  FleetStore,
  GrantKey,
  GrantStore,
  InstanceCredential,
  InstanceRecord,
  Lease,
  LockClaim,
  LockState,
  RejectionRecord,
  SlotRecord,
  StoredDocument,
  StoredGrant,
  Unwatch,
} from "./store.ts";
export type {
  ActiveChange,
  CachedGrant,
  GrantRequestMode,
  SharedCredential,
  SharedState,
  SharedStateContext,
} from "../store.ts";
export type { Clock, TimerHandle } from "../clock.ts";
export type { RetryOptions } from "../retry.ts";
export type { Secret } from "../secret.ts";
export type { TokenAuthMethod } from "../token_endpoint.ts";
