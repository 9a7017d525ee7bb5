/**
 * The core's one port: {@linkcode SharedState}, where an instance keeps its
 * grants and its active label. In memory by default; fleet mode (`./fleet`
 * with `./kv` or `./redis`) implements it outside the core to share both
 * among the instances of a service.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { RetryOptions } from "./retry.ts";
import type { Secret } from "./secret.ts";
import type { TokenAuthMethod } from "./token_endpoint.ts";

/** A cached access token and its timing. */
export interface CachedGrant {
  /** The access token. */
  readonly accessToken: string;
  /** When it expires, in ms since the epoch (measured from when it was requested). */
  readonly expiresAt: number;
  /** From when a refresh ahead of expiry starts, in ms since the epoch. */
  readonly refreshAt: number;
  /** The client id it was issued to (so a replaced credential's grant is not reused). */
  readonly clientId: string;
}

/** One credential as shared state sees it. */
export interface SharedCredential {
  /** The label. */
  readonly label: string;
  /** The client id. */
  readonly clientId: string;
  /** The secret: for hashing or proving, never to be stored in the clear. */
  readonly clientSecret: Secret;
  /**
   * How it authenticates at the token endpoint: a secret shared state
   * proves or puts in place keeps it.
   *
   * @default undefined (`client_secret_basic`)
   */
  readonly authMethod?: TokenAuthMethod;
}

/** What an auth instance tells shared state when it attaches. */
export interface SharedStateContext {
  /** The token endpoint (part of every shared key's namespace). */
  readonly tokenUrl: string;
  /** The scope requested, if any (part of every shared key's namespace). */
  readonly scope?: string;
  /**
   * Further token request parameters (Auth0's `audience`), for proving a
   * secret that shared state hands over.
   *
   * @default undefined (none)
   */
  readonly tokenParams?: Readonly<Record<string, string>>;
  /** The credentials, in configured order. */
  readonly credentials: readonly SharedCredential[];
  /** The active label configured locally (used when nothing is shared yet). */
  readonly active: string;
  /** Distinct tokens per credential (the pool). */
  readonly tokensPerCredential: number;
  /** The instance's clock. */
  readonly clock: Clock;
  /** The instance's fetch, for proving a secret that shared state hands over. */
  readonly fetch: typeof fetch;
  /** The instance's token request timeout, for the same proof. */
  readonly requestTimeoutMs: number;
  /** The instance's retry policy, for the same proof. */
  readonly retry: RetryOptions;
  /** Emits a `warning` event on the instance. */
  readonly warn: (code: string, message: string, label?: string) => void;
  /**
   * The instance's `setCredentials`: how shared state puts a proven secret
   * in place.
   */
  readonly setCredentials: (credentials: readonly SharedCredential[]) => void;
}

/** How a token request through {@linkcode SharedState.request} is meant. */
export interface GrantRequestMode {
  /** A refresh ahead of expiry: a valid token is being served meanwhile. */
  readonly background: boolean;
  /** A proof (`rotate()`): always send a request, never take a shared grant. */
  readonly verify: boolean;
  /** A probe of a rejected credential when nothing else serves. */
  readonly probe?: boolean;
}

/** Why the active label changed, for {@linkcode SharedState.setActive}. */
export type ActiveChange = "start" | "repair" | "failover" | "rotate";

/**
 * The core's one port: grants by key, the active label, and the hooks that
 * let a shared implementation (fleet mode) follow the instance. Reads are
 * synchronous so the hot path stays a map lookup: a shared implementation
 * keeps a local mirror and writes through. The optional members let a fleet
 * coordinate token requests; without them the instance requests its own.
 *
 * Grant keys are a credential's label, or `label#i` for pool member `i`.
 */
export interface SharedState {
  /**
   * Called once by `createDualSecretAuth`, before any other member.
   *
   * @param context The instance's configuration.
   */
  attach?(context: SharedStateContext): void;
  /**
   * Reads a cached grant.
   *
   * @param key The grant's key.
   * @returns The grant, if any.
   */
  getGrant(key: string): CachedGrant | undefined;
  /**
   * Caches a grant.
   *
   * @param key The grant's key.
   * @param grant The grant.
   */
  setGrant(key: string, grant: CachedGrant): void;
  /**
   * Removes exactly `grant` (compare-and-delete): a newer grant under the
   * same key, written meanwhile by another caller or instance, stays.
   *
   * @param key The grant's key.
   * @param grant The grant to remove.
   */
  deleteGrant(key: string, grant: CachedGrant): void;
  /**
   * Reads the active label.
   *
   * @returns The active label, if one was set.
   */
  getActive(): string | undefined;
  /**
   * Sets the active label. For `rotate`, `rotate()` waits for a returned
   * promise (a fleet publishing the switch).
   *
   * @param label The new active label.
   * @param why Why it changed.
   * @returns Nothing, or a promise settled once the change is shared.
   */
  setActive(label: string, why: ActiveChange): void | Promise<void>;
  /**
   * Called after `setCredentials` replaced the list.
   *
   * @param credentials The new list.
   */
  credentialsChanged?(credentials: readonly SharedCredential[]): void;
  /**
   * The pool members this instance serves a credential from.
   *
   * @param label The credential.
   * @returns Pool indices, never empty.
   */
  slotsOf?(label: string): readonly number[];
  /**
   * Gets a grant through shared state: a shared one, or `send()` under a
   * lease. Without it, the instance calls `send()` itself.
   *
   * @param label The credential.
   * @param slot The pool index.
   * @param mode Background refresh, proof or probe.
   * @param send Sends the token request (with retries).
   * @returns The grant.
   */
  request?(
    label: string,
    slot: number,
    mode: GrantRequestMode,
    send: () => Promise<CachedGrant>,
  ): Promise<CachedGrant>;
  /**
   * Notes that a token of a credential was served.
   *
   * @param label The credential.
   * @param now The current time.
   */
  used?(label: string, now: number): void;
  /** Called by `close()`; the instance waits for it. */
  close?(): Promise<void>;
}

/**
 * The default {@linkcode SharedState}: a `Map` and a variable in this process.
 *
 * @param active The label active at start.
 * @returns A new, empty state.
 *
 * @example
 * ```ts
 * import { createMemorySharedState } from "@rotating/dual-secret-auth";
 * const state = createMemorySharedState("blue");
 * const grant = { accessToken: "t", expiresAt: 2, refreshAt: 1, clientId: "c" };
 * state.setGrant("blue", grant);
 * state.setActive("green", "rotate");
 * if (state.getGrant("blue") !== grant || state.getActive() !== "green") {
 *   throw new Error();
 * }
 * ```
 */
export function createMemorySharedState(active?: string): SharedState {
  return new MemorySharedState(active);
}

// A class, so the methods live once on the prototype, not as closures per
// instance; the private fields keep the state out of reach as a closure did.
class MemorySharedState implements SharedState {
  readonly #grants = new Map<string, CachedGrant>();
  #active: string | undefined;
  constructor(active: string | undefined) {
    this.#active = active;
  }
  getGrant(key: string): CachedGrant | undefined {
    return this.#grants.get(key);
  }
  setGrant(key: string, grant: CachedGrant): void {
    this.#grants.set(key, grant);
  }
  deleteGrant(key: string, grant: CachedGrant): void {
    if (this.#grants.get(key) === grant) this.#grants.delete(key);
  }
  getActive(): string | undefined {
    return this.#active;
  }
  setActive(label: string): void {
    this.#active = label;
  }
}
