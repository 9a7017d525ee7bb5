/**
 * `createDualSecretAuth`: the selector over credential slots. It picks the
 * active credential, fails over only on rejection, rotates after verifying,
 * and reloads credentials without a restart.
 *
 * @module
 */
import { abortable } from "./abortable.ts";
import { authorizedFetch } from "./authorized_fetch.ts";
import {
  type ConfigWarning,
  type CredentialInput,
  type DualSecretAuthOptions,
  resolveConfig,
  resolveCredentials,
  type ResolvedCredential,
} from "./config.ts";
import { CredentialSlot, type CredentialState } from "./credential_slot.ts";
import {
  AllCredentialsRejectedError,
  ClosedError,
  CredentialRejectedError,
  RotationFailedError,
  TokenEndpointUnavailableError,
  UnknownCredentialError,
} from "./errors.ts";
import { type AuthEvent, type ErrorSummary, summariseError } from "./events.ts";
import { createMemoryActiveStore, createMemoryTokenStore } from "./store.ts";
import type { FleetHandle, FleetSummary } from "./fleet/link.ts";

/** One credential in {@linkcode AuthStatus}. No secret, no token. */
export interface CredentialStatus {
  /** Its label. */
  readonly label: string;
  /** Its client id. */
  readonly clientId: string;
  /** Its state now. */
  readonly state: CredentialState;
  /** When its cached token expires (ms since the epoch), if it has one. */
  readonly expiresAt?: number;
  /** Its last failure, cleared by a success. */
  readonly lastError?: ErrorSummary;
}

/** A snapshot of an auth instance, safe to log or serve on a health endpoint. */
export interface AuthStatus {
  /** The active label. */
  readonly active: string;
  /** Every credential, in configured order. */
  readonly credentials: readonly CredentialStatus[];
  /** The fleet this instance joined, if any. */
  readonly fleet?: FleetSummary;
}

/** What `rotate()` did. */
export interface RotationResult {
  /** The label that was active. */
  readonly from: string;
  /** The label now active. */
  readonly to: string;
  /** When the verified token of `to` expires (ms since the epoch). */
  readonly expiresAt: number;
}

/** Options of `rotate()`. */
export interface RotateOptions {
  /** The label to switch to once a token request with it succeeds. */
  readonly to: string;
  /** Stops waiting (the active credential stays). */
  readonly signal?: AbortSignal;
}

/** Options of `getAccessToken()`. */
export interface GetAccessTokenOptions {
  /** Stops this caller's wait; a shared request goes on for the others. */
  readonly signal?: AbortSignal;
}

/** An auth instance; see {@linkcode createDualSecretAuth}. */
export interface DualSecretAuth extends AsyncDisposable {
  /**
   * A valid access token of the active credential: cached, refreshed ahead of
   * expiry, shared among concurrent callers, failed over on rejection.
   *
   * @throws {AllCredentialsRejectedError} When every credential is rejected.
   * @throws {TokenEndpointUnavailableError} When retries ran out on 5xx, network errors or timeouts.
   * @throws {RateLimitedError} When the token endpoint kept answering 429.
   */
  getAccessToken(options?: GetAccessTokenOptions): Promise<string>;
  /**
   * `fetch` with `Authorization: Bearer`; a 401 with a stale-token challenge
   * invalidates that token and replays the request once.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * Verifies `to` with a fresh token request, then makes it active. If the
   * request fails, the active credential stays.
   *
   * @throws {RotationFailedError} When verification fails (cause: why).
   * @throws {UnknownCredentialError} When `to` is not configured.
   */
  rotate(options: RotateOptions): Promise<RotationResult>;
  /** Drops the cached token given, or every cached token. */
  invalidate(token?: string): void;
  /**
   * Replaces the credential list without a restart. Unchanged credentials keep
   * their tokens; changed or new ones start fresh (and are no longer rejected).
   *
   * @throws {ConfigError} When the list is invalid (nothing changes then).
   */
  setCredentials(credentials: readonly CredentialInput[]): void;
  /** A snapshot without secrets or tokens. */
  status(): AuthStatus;
  /** Aborts requests in flight and waits for them; later calls throw {@linkcode ClosedError}. */
  close(): Promise<void>;
  /** The fleet this instance joined (the `fleet` option), else `undefined`. */
  readonly fleet?: FleetHandle;
}

/**
 * Creates an auth instance over two or more OAuth client credentials, for
 * rotating secrets without dropping a request.
 *
 * @param options Credentials, token endpoint and tuning; see {@linkcode DualSecretAuthOptions}.
 * @returns The instance.
 * @throws {ConfigError} When an option is missing or invalid.
 *
 * @example Two Genesys Cloud OAuth clients, blue active
 * ```ts
 * import { createDualSecretAuth } from "./dual_secret_auth.ts";
 * await using auth = createDualSecretAuth({
 *   credentials: [
 *     { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
 *     { label: "green", clientId: "green-id", clientSecret: "green-secret" },
 *   ],
 *   environment: "mypurecloud.ie",
 * });
 * if (auth.status().active !== "blue") throw new Error();
 * ```
 */
export function createDualSecretAuth(
  options: DualSecretAuthOptions,
): DualSecretAuth {
  const warnings: ConfigWarning[] = [];
  const config = resolveConfig(options, warnings);
  const { clock } = config;
  const fleetLink = options.fleet?.join({
    tokenUrl: config.tokenUrl,
    scope: config.scope,
    credentials: config.credentials,
    active: config.active,
    tokensPerCredential: config.tokensPerCredential,
    clock,
    warn: (code, message, label) =>
      emitWarning({ code, message, ...(label ? { label } : {}) }),
  });
  const tokenStore = fleetLink?.tokens ?? options.tokenStore ??
    createMemoryTokenStore();
  const activeStore = fleetLink?.active ?? options.activeStore ??
    createMemoryActiveStore(config.active);
  const closeController = new AbortController();
  const background = new Set<Promise<unknown>>();
  let slots = new Map<string, CredentialSlot>();
  // Pool members of each credential; [0] is the credential's slot in `slots`.
  let pools = new Map<string, CredentialSlot[]>();
  let turn = 0;
  let rotation: Promise<unknown> = Promise.resolve();
  let closed = false;
  let lastNow = clock.now();

  const emit = (event: AuthEvent): void => {
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's bug must not break authentication.
    }
  };
  const slotContext = {
    config,
    store: tokenStore,
    emit,
    closeSignal: closeController.signal,
    fleet: fleetLink,
  };
  const newSlot = (credential: ResolvedCredential) =>
    new CredentialSlot(credential, slotContext);
  const newPool = (first: CredentialSlot) => [
    first,
    ...Array.from(
      { length: config.tokensPerCredential - 1 },
      (_, i) => new CredentialSlot(first.credential, slotContext, i + 1),
    ),
  ];
  const pooled = config.tokensPerCredential > 1;
  const allPoolIndexes = Array.from(
    { length: config.tokensPerCredential },
    (_, i) => i,
  );

  for (const credential of config.credentials) {
    slots.set(credential.label, newSlot(credential));
  }
  for (const slot of slots.values()) pools.set(slot.label, newPool(slot));
  if (!slots.has(activeStore.get() ?? "")) activeStore.set(config.active);
  warnings.forEach(emitWarning);

  function emitWarning(warning: ConfigWarning): void {
    emit({ type: "warning", ...warning });
  }

  function activeSlot(): CredentialSlot {
    const label = activeStore.get();
    const slot = label === undefined ? undefined : slots.get(label);
    if (slot !== undefined) return slot;
    // The shared active label names a credential this instance lacks.
    const fallback = pickStandby(undefined) ?? slots.values().next().value!;
    activeStore.set(fallback.label);
    return fallback;
  }

  async function getAccessToken(
    callOptions?: GetAccessTokenOptions,
  ): Promise<string> {
    if (closed) throw new ClosedError();
    const now = clock.now();
    if (now < lastNow) onClockWentBack(lastNow - now);
    lastNow = now;
    const label = activeStore.get();
    // Without a pool the grant's key is the label: no pool lookup here.
    const member = pooled && label !== undefined
      ? servingSlot(label)
      : undefined;
    const grant = label === undefined
      ? undefined
      : tokenStore.get(member?.key ?? label);
    if (grant !== undefined && now < grant.refreshAt) {
      if (fleetLink !== undefined) fleetLink.used(label!, now);
      return grant.accessToken;
    }
    return await acquire(callOptions?.signal, member);
  }

  /** The pool member that serves the next call: in turn over this instance's share of the pool. */
  function servingSlot(label: string): CredentialSlot | undefined {
    const pool = pools.get(label);
    if (pool === undefined || pool.length === 1) return pool?.[0];
    const indexes = fleetLink?.slotsOf(label) ?? allPoolIndexes;
    return pool[indexes[turn++ % indexes.length]] ?? pool[0];
  }

  /** Whether a slot still belongs to the configured credentials (not replaced). */
  function isCurrent(slot: CredentialSlot): boolean {
    return pools.get(slot.label)?.[slot.poolIndex] === slot;
  }

  /** A credential's rejection, if any of its pool members was rejected. */
  function rejectionOf(label: string): CredentialRejectedError | undefined {
    const pool = pools.get(label);
    if (pool === undefined || pool.length === 1) return pool?.[0].rejection;
    return pool.find((slot) => slot.rejection)?.rejection;
  }

  /**
   * Expiry times are wall-clock times; after the clock steps back they would
   * outlive the server's view of the tokens, so every cached token goes.
   */
  function onClockWentBack(byMs: number): void {
    invalidate();
    emitWarning({
      code: "CLOCK_WENT_BACK",
      message:
        `The clock went back by ${byMs} ms; cached tokens were dropped and will be requested again.`,
    });
  }

  async function acquire(
    signal: AbortSignal | undefined,
    chosen?: CredentialSlot,
  ): Promise<string> {
    // Each lap either returns or fails one credential over; a token that
    // expired on its way here (a clock jump, a tiny lifetime) costs a lap too.
    for (let lap = 0; lap <= slots.size + 2; lap++) {
      if (closed) throw new ClosedError();
      const primary = activeSlot();
      // The first lap keeps the pool member the fast path chose, so the pool
      // is handed out in turn.
      const slot = lap === 0 && chosen?.label === primary.label &&
          isCurrent(chosen)
        ? chosen
        : servingSlot(primary.label) ?? primary;
      const rejection = rejectionOf(slot.label);
      const now = clock.now();
      const cached = rejection ? undefined : slot.validGrant(now);
      if (cached !== undefined) {
        if (now >= cached.refreshAt) refreshAhead(slot, now);
        fleetLink?.used(slot.label, now);
        return cached.accessToken;
      }
      try {
        const grant = rejection ? Promise.reject(rejection) : slot.acquire();
        const fresh = await abortable(grant, signal);
        // A credential removed meanwhile must not serve; the next lap picks
        // from the current list.
        if (clock.now() < fresh.expiresAt && isCurrent(slot)) {
          return fresh.accessToken;
        }
      } catch (error) {
        if (!(error instanceof CredentialRejectedError)) throw error;
        // A credential replaced while its request was in flight: its
        // successor gets its own request on the next lap.
        if (isCurrent(slot)) failover(slot, error);
      }
    }
    throw new TokenEndpointUnavailableError(
      "every token received had already expired; check the clock and the token lifetime",
    );
  }

  function refreshAhead(slot: CredentialSlot, now: number): void {
    const refresh = slot.refreshAhead(now);
    if (refresh === undefined) return;
    const tracked = refresh.catch((error) => {
      // Transient failures keep the still-valid token in service; a
      // rejection moves traffic to a standby before the token runs out.
      if (
        error instanceof CredentialRejectedError && !closed &&
        isCurrent(slot)
      ) {
        try {
          failover(slot, error);
        } catch {
          // Every credential rejected: callers learn it once the token expires.
        }
      }
    }).finally(() => background.delete(tracked));
    background.add(tracked);
  }

  function failover(from: CredentialSlot, error: CredentialRejectedError) {
    if (activeStore.get() !== from.label && slots.has(activeStore.get()!)) {
      return; // Another caller already moved traffic on.
    }
    const next = pickStandby(from.label);
    if (next === undefined) {
      throw new AllCredentialsRejectedError(
        [...slots.values()].map((slot) => ({
          label: slot.label,
          state: slot.state(clock.now()),
          oauthError: rejectionOf(slot.label)?.oauthError,
          status: rejectionOf(slot.label)?.status,
        })),
        { cause: error },
      );
    }
    activeStore.set(next.label);
    fleetLink?.failedOver(next.label);
    emit({
      type: "failover",
      from: from.label,
      to: next.label,
      error: summariseError(error),
    });
  }

  /** The healthiest credential that is not rejected: one with a token first, then one that has not failed, then configured order. */
  function pickStandby(
    exclude: string | undefined,
  ): CredentialSlot | undefined {
    const now = clock.now();
    const rank = (slot: CredentialSlot) =>
      slot.validGrant(now) ? 0 : slot.lastError ? 2 : 1;
    return [...slots.values()]
      .filter((slot) => slot.label !== exclude && !rejectionOf(slot.label))
      .sort((a, b) => rank(a) - rank(b))[0];
  }

  function rotate(rotateOptions: RotateOptions): Promise<RotationResult> {
    const run = rotation.then(() => rotateNow(rotateOptions));
    rotation = run.catch(() => undefined);
    return run;
  }

  async function rotateNow({ to, signal }: RotateOptions) {
    if (closed) throw new ClosedError();
    const target = slots.get(to);
    if (target === undefined) {
      throw new UnknownCredentialError(to, [...slots.keys()]);
    }
    const from = activeSlot().label;
    let grant;
    try {
      grant = await abortable(target.verify(), signal);
    } catch (error) {
      throw new RotationFailedError(from, to, { cause: error });
    }
    if (slots.get(to) !== target) {
      throw new RotationFailedError(from, to, {
        cause: new UnknownCredentialError(to, [...slots.keys()]),
      });
    }
    // The proof clears the credential's rejection: pool members rejected
    // before it start afresh.
    const pool = pools.get(to)!;
    for (let i = 1; i < pool.length; i++) {
      if (pool[i].rejection) {
        pool[i].retire();
        pool[i] = new CredentialSlot(target.credential, slotContext, i);
      }
    }
    activeStore.set(to);
    await fleetLink?.rotated(to);
    emit({ type: "rotated", from, to });
    return { from, to, expiresAt: grant.expiresAt };
  }

  function invalidate(token?: string): void {
    for (const pool of pools.values()) {
      for (const slot of pool) {
        if (
          token === undefined || tokenStore.get(slot.key)?.accessToken === token
        ) {
          slot.invalidate();
        }
      }
    }
  }

  function setCredentials(list: readonly CredentialInput[]): void {
    if (closed) throw new ClosedError();
    const newWarnings: ConfigWarning[] = [];
    const credentials = resolveCredentials(list, newWarnings);
    const next = new Map<string, CredentialSlot>();
    for (const credential of credentials) {
      const current = slots.get(credential.label);
      const unchanged = current !== undefined &&
        current.credential.clientId === credential.clientId &&
        current.credential.clientSecret.equals(credential.clientSecret);
      next.set(credential.label, unchanged ? current : newSlot(credential));
    }
    const nextPools = new Map<string, CredentialSlot[]>();
    for (const [label, slot] of next) {
      nextPools.set(
        label,
        slots.get(label) === slot ? pools.get(label)! : newPool(slot),
      );
    }
    for (const [label, pool] of pools) {
      if (nextPools.get(label) !== pool) pool.forEach((slot) => slot.retire());
    }
    slots = next;
    pools = nextPools;
    fleetLink?.credentialsChanged(credentials);
    newWarnings.forEach(emitWarning);
    const active = activeStore.get();
    if (active === undefined || !slots.has(active)) {
      const replacement = pickStandby(undefined) ?? [...slots.values()][0];
      activeStore.set(replacement.label);
      emitWarning({
        code: "ACTIVE_REMOVED",
        label: replacement.label,
        message:
          `The active credential "${active}" was removed; "${replacement.label}" is active now.`,
      });
    }
  }

  function status(): AuthStatus {
    const now = clock.now();
    return {
      active: activeSlot().label,
      credentials: [...slots.values()].map((slot) => {
        const grant = slot.validGrant(now);
        return {
          label: slot.label,
          clientId: slot.credential.clientId,
          state: slot.state(now),
          ...(grant ? { expiresAt: grant.expiresAt } : {}),
          ...(slot.lastError ? { lastError: slot.lastError } : {}),
        };
      }),
      ...(fleetLink ? { fleet: fleetLink.summary() } : {}),
    };
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    closeController.abort(new ClosedError());
    const pending = [...pools.values()].flat().map((slot) => slot.inflight);
    await Promise.allSettled([...pending, ...background, rotation]);
    await fleetLink?.close();
  }

  const auth: DualSecretAuth = {
    getAccessToken,
    fetch: (input, init) =>
      authorizedFetch(
        { getAccessToken, invalidate, fetch: config.fetch },
        input,
        init,
      ),
    rotate,
    invalidate,
    setCredentials,
    status,
    close,
    [Symbol.asyncDispose]: close,
    ...(fleetLink
      ? {
        fleet: Object.freeze({
          instanceId: options.fleet!.instanceId,
          instances: () => fleetLink.instances(),
        }),
      }
      : {}),
  };
  Object.defineProperty(auth, Symbol.for("Deno.customInspect"), {
    value: () =>
      `DualSecretAuth { active: "${activeStore.get()}", credentials: [${
        [...slots.keys()].map((label) => `"${label}"`).join(", ")
      }]${closed ? ", closed" : ""} }`,
  });
  return Object.freeze(auth);
}
