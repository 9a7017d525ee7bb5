/**
 * The seam between `createDualSecretAuth` and a fleet: types only, so that
 * `mod.ts` names them without pulling any engine into its graph. An engine
 * entry (`./kv`, `./redis`) builds a {@linkcode Fleet}; the auth instance
 * joins it once and talks to the {@linkcode FleetLink} it gets back.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { Secret } from "../secret.ts";
import type { ActiveStore, CachedGrant, TokenStore } from "../store.ts";
import type { InstanceRecord } from "./store.ts";

export type { InstanceCredential, InstanceRecord } from "./store.ts";

/** One credential as the fleet sees it. */
export interface FleetCredential {
  /** The label. */
  readonly label: string;
  /** The client id. */
  readonly clientId: string;
  /** The secret: only hashed (for the rejection record), never stored. */
  readonly clientSecret: Secret;
}

/** What an auth instance tells the fleet when it joins. */
export interface FleetJoinContext {
  /** The token endpoint (part of every key's namespace). */
  readonly tokenUrl: string;
  /** The scope requested, if any (part of every key's namespace). */
  readonly scope?: string;
  /** The credentials, in configured order. */
  readonly credentials: readonly FleetCredential[];
  /** The active label configured locally (used when the fleet has none yet). */
  readonly active: string;
  /** Distinct tokens per credential across the fleet. */
  readonly tokensPerCredential: number;
  /** The instance's clock. */
  readonly clock: Clock;
  /** Emits a `warning` event. */
  readonly warn: (code: string, message: string, label?: string) => void;
}

/** How a token request through the fleet is meant. */
export interface FleetRequestMode {
  /** A refresh ahead of expiry: a valid token is being served meanwhile. */
  readonly background: boolean;
  /** A proof (`rotate()`): always send a request, never take the store's grant. */
  readonly verify: boolean;
  /**
   * A probe of a rejected credential when nothing else serves: sent even if
   * the fleet saw the credential rejected (once per fleet, under the lease).
   */
  readonly probe?: boolean;
}

/** A secret-free summary of the fleet, part of `status()`. */
export interface FleetSummary {
  /** This instance's id. */
  readonly instanceId: string;
  /** Whether the last store call succeeded. */
  readonly store: "ok" | "unavailable";
  /** Live instances seen at the last poll, this one included. */
  readonly instances: number;
  /** The generation of the fleet's active label this instance follows (0: none). */
  readonly activeGeneration: number;
  /** The pool slots this instance serves from, per label. */
  readonly slots: Readonly<Record<string, readonly number[]>>;
  /** When the store last answered a poll, in ms since the epoch. */
  readonly lastSyncAt?: number;
}

/** What an auth instance holds of the fleet it joined. */
export interface FleetLink {
  /** The local mirror of the fleet's grants, keyed like the instance's own store. */
  readonly tokens: TokenStore;
  /** The local mirror of the fleet's active label. */
  readonly active: ActiveStore;
  /**
   * The pool slots this instance serves a credential from (assigned through
   * the store's heartbeats, spread evenly over the fleet).
   *
   * @param label The credential.
   * @returns Pool indices, never empty.
   */
  slotsOf(label: string): readonly number[];
  /**
   * Gets a grant through the fleet: the store's, if valid; else this
   * instance requests it (`send`) under the slot's lease and writes it; or
   * waits a bounded time for the lease holder. Never fails because of the
   * store: then it just calls `send`.
   *
   * @param label The credential.
   * @param slot The pool index.
   * @param mode Background refresh or proof.
   * @param send Sends the token request (with retries).
   * @returns The grant.
   */
  request(
    label: string,
    slot: number,
    mode: FleetRequestMode,
    send: () => Promise<CachedGrant>,
  ): Promise<CachedGrant>;
  /**
   * Publishes that this instance moved traffic from one credential to another
   * (the active label, compare-and-set on its generation).
   *
   * @param to The label now active.
   */
  failedOver(to: string): void;
  /**
   * Publishes a proven switch (`rotate()`): compare-and-set on the generation.
   * Resolves once written, or once the store was found unavailable (then it is
   * retried at the next poll, and a warning says so).
   *
   * @param to The label now active.
   */
  rotated(to: string): Promise<void>;
  /**
   * Notes that a token of a credential was served (for the heartbeat).
   *
   * @param label The credential.
   * @param now The current time.
   */
  used(label: string, now: number): void;
  /**
   * Replaces the credential list (setCredentials): a replaced credential's
   * published rejections no longer apply to it.
   *
   * @param credentials The new list.
   */
  credentialsChanged(credentials: readonly FleetCredential[]): void;
  /**
   * Lists the live instances from their heartbeats.
   *
   * @returns The instances whose heartbeat has not lapsed.
   */
  instances(): Promise<InstanceRecord[]>;
  /**
   * A summary for `status()`; pure.
   *
   * @returns The summary.
   */
  summary(): FleetSummary;
  /** Stops polling and heartbeats and removes this instance's heartbeat. */
  close(): Promise<void>;
}

/** A fleet to join: what `createKvFleet` (`./kv`) or `createRedisFleet` (`./redis`) return. */
export interface Fleet {
  /** This instance's id. */
  readonly instanceId: string;
  /**
   * Joins the fleet; called once by `createDualSecretAuth`.
   *
   * @param context The instance's configuration.
   * @returns The link.
   */
  join(context: FleetJoinContext): FleetLink;
}

/** The fleet part of an auth instance: `auth.fleet`. */
export interface FleetHandle {
  /** This instance's id. */
  readonly instanceId: string;
  /**
   * Lists the live instances of the fleet from their heartbeats.
   *
   * @returns The instances whose heartbeat has not lapsed.
   */
  instances(): Promise<InstanceRecord[]>;
}
