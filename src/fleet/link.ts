/**
 * Fleet mode as the core sees it: a {@linkcode Fleet} implements the core's
 * one port, `SharedState`, over a fleet member ({@linkcode FleetLink}), and
 * adopts the sealed secrets the fleet distributes (proven first with a token
 * request of their own). The core imports nothing of this folder.
 *
 * @module
 */
import { createDualSecretAuth } from "../dual_secret_auth.ts";
import { ConfigError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { Secret } from "../secret.ts";
import type {
  CachedGrant,
  GrantRequestMode,
  SharedCredential,
  SharedState,
  SharedStateContext,
} from "../store.ts";
import type { InstanceRecord } from "./store.ts";

export type { InstanceCredential, InstanceRecord } from "./store.ts";

/** One credential as the fleet sees it: the secret is only hashed or proven, never stored in the clear. */
export type FleetCredential = SharedCredential;

/** A fleet member's mirror of the fleet's grants (synchronous reads). */
export interface TokenStore {
  /**
   * Reads a grant.
   *
   * @param key The grant's key.
   * @returns The grant, if any.
   */
  get(key: string): CachedGrant | undefined;
  /**
   * Writes a grant.
   *
   * @param key The grant's key.
   * @param grant The grant.
   */
  set(key: string, grant: CachedGrant): void;
  /**
   * Drops a grant (and the fleet's copy of it).
   *
   * @param key The grant's key.
   */
  delete(key: string): void;
}

/** A fleet member's mirror of the fleet's active label. */
export interface ActiveStore {
  /**
   * Reads the active label.
   *
   * @returns The label.
   */
  get(): string | undefined;
  /**
   * Sets the active label locally (not published).
   *
   * @param label The label.
   */
  set(label: string): void;
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
  /**
   * Proves a secret distributed through the fleet with a token request and,
   * if it works, puts it in place of the label's current one
   * (`setCredentials`); rejects, changing nothing, when the proof fails.
   */
  readonly adoptSecret?: (
    label: string,
    clientId: string,
    clientSecret: Secret,
  ) => Promise<void>;
}

/** How a token request through the fleet is meant. */
export type FleetRequestMode = GrantRequestMode;

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

/**
 * A fleet for the `shared` option of `createDualSecretAuth`: what
 * `createKvFleet` (`./kv`) and `createRedisFleet` (`./redis`) return. Give
 * each auth instance its own.
 */
export interface Fleet extends SharedState {
  /** This instance's id. */
  readonly instanceId: string;
  /**
   * Lists the live instances of the fleet from their heartbeats.
   *
   * @returns The instances whose heartbeat has not lapsed (none before an
   *   auth instance attached).
   */
  instances(): Promise<InstanceRecord[]>;
  /**
   * A secret-free summary, for a health endpoint beside `auth.status()`.
   *
   * @returns The summary, or `undefined` before an auth instance attached.
   */
  summary(): FleetSummary | undefined;
}

/**
 * Makes a {@linkcode Fleet} of a way to join one: the core's port mapped onto
 * the member, plus the adoption of distributed secrets.
 *
 * @param instanceId This instance's id.
 * @param join Creates the member once an auth instance attaches.
 * @param onClose Runs after the member left (an engine closing its connections).
 * @returns The fleet.
 */
export function fleetSharedState(
  instanceId: string,
  join: (context: FleetJoinContext) => FleetLink,
  onClose?: () => Promise<void>,
): Fleet {
  let link: FleetLink | undefined;
  // The instance's credentials now, for adopting a distributed secret.
  let credentials: readonly FleetCredential[] = [];
  const joined = (): FleetLink => {
    if (link === undefined) {
      throw new ConfigError(
        "shared",
        "this fleet was not attached; pass it as the shared option of createDualSecretAuth",
      );
    }
    return link;
  };
  return Object.freeze({
    instanceId,
    attach(context: SharedStateContext): void {
      if (link !== undefined) {
        throw new ConfigError(
          "shared",
          "this fleet was already joined; create one fleet per auth instance",
        );
      }
      credentials = context.credentials;
      link = join({
        tokenUrl: context.tokenUrl,
        ...(context.scope === undefined ? {} : { scope: context.scope }),
        credentials,
        active: context.active,
        tokensPerCredential: context.tokensPerCredential,
        clock: context.clock,
        warn: context.warn,
        adoptSecret: (label, clientId, clientSecret) =>
          adoptSecret(
            context,
            () => credentials,
            label,
            clientId,
            clientSecret,
          ),
      });
    },
    getGrant: (key: string) => joined().tokens.get(key),
    setGrant: (key: string, grant: CachedGrant) =>
      joined().tokens.set(key, grant),
    deleteGrant(key: string, grant: CachedGrant): void {
      const tokens = joined().tokens;
      if (tokens.get(key) === grant) tokens.delete(key);
    },
    getActive: () => joined().active.get(),
    setActive(label: string, why: string): void | Promise<void> {
      const member = joined();
      if (why === "rotate") return member.rotated(label);
      if (why === "failover") member.failedOver(label);
      else member.active.set(label);
    },
    credentialsChanged(next: readonly FleetCredential[]): void {
      credentials = next;
      joined().credentialsChanged(next);
    },
    slotsOf: (label: string) => joined().slotsOf(label),
    request: (
      label: string,
      slot: number,
      mode: GrantRequestMode,
      send: () => Promise<CachedGrant>,
    ) => joined().request(label, slot, mode, send),
    used: (label: string, now: number) => joined().used(label, now),
    instances: () => link?.instances() ?? Promise.resolve([]),
    summary: () => link?.summary(),
    async close(): Promise<void> {
      try {
        await link?.close();
      } finally {
        await onClose?.();
      }
    },
  });
}

/**
 * A secret distributed through the fleet: proven with one token request of
 * its own (an instance of just that credential), then put in place with the
 * instance's `setCredentials`. A failed proof changes nothing.
 */
async function adoptSecret(
  context: SharedStateContext,
  current: () => readonly FleetCredential[],
  label: string,
  clientId: string,
  clientSecret: Secret,
): Promise<void> {
  const before = current().find((c) => c.label === label);
  if (before === undefined || before.clientId !== clientId) {
    throw new ConfigError(
      "shared",
      `"${label}" with client ${clientId} is not configured on this instance`,
    );
  }
  // No `await using`: the bundle runs on Node 20.
  // The credential as configured (its auth method), with the new secret,
  // and the instance's token parameters (Auth0's audience).
  const probe = createDualSecretAuth({
    credentials: [{ ...before, clientSecret }],
    tokenUrl: context.tokenUrl,
    ...(context.scope === undefined ? {} : { scope: context.scope }),
    ...(context.tokenParams === undefined
      ? {}
      : { tokenParams: context.tokenParams }),
    fetch: context.fetch,
    clock: context.clock,
    requestTimeoutMs: context.requestTimeoutMs,
    retry: context.retry,
  });
  try {
    await probe.getAccessToken();
  } finally {
    await probe.close();
  }
  const now = current();
  if (now.find((c) => c.label === label) !== before) {
    // Replaced meanwhile (setCredentials): the fleet looks again next poll.
    throw new ConfigError(
      "shared",
      `"${label}" was replaced while its new secret was being proven`,
    );
  }
  context.setCredentials(
    now.map((c) => c.label === label ? { ...c, clientSecret } : c),
  );
}
