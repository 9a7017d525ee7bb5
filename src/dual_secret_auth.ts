/**
 * `createDualSecretAuth`: the selector over credential slots. It picks the
 * active credential, fails over only on rejection, rotates after verifying,
 * and reloads credentials without a restart.
 *
 * @module
 */
import { abortable } from "./abortable.ts";
import {
  authorizedFetch,
  type AuthorizedFetchContext,
} from "./authorized_fetch.ts";
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
  AbortedError,
  AllCredentialsRejectedError,
  ClosedError,
  CredentialRejectedError,
  RotationFailedError,
  TokenEndpointUnavailableError,
  UnknownCredentialError,
} from "./errors.ts";
import { type AuthEvent, type ErrorSummary, summariseError } from "./events.ts";
import { createRedactor, credentialForms } from "./redact.ts";
import {
  type CachedGrant,
  createMemoryActiveStore,
  createMemoryTokenStore,
} from "./store.ts";
import { followSource } from "./sources/follow.ts";
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

/**
 * An auth instance; see {@linkcode createDualSecretAuth}.
 *
 * Abort rule, the same for `getAccessToken`, `fetch` and `rotate`: a signal
 * already aborted rejects at once with `AbortedError` (its `cause` is
 * `signal.reason`) before any cache read or request; an abort while waiting
 * (for a token, the API, or a 429 wait) rejects with `AbortedError` too. A
 * shared token request goes on for the other callers. `close()` rejects the
 * calls in flight with `ClosedError`.
 */
export interface DualSecretAuth extends AsyncDisposable {
  /**
   * A valid access token of the active credential: cached, refreshed ahead of
   * expiry, shared among concurrent callers, failed over on rejection.
   *
   * @throws {AllCredentialsRejectedError} When every credential is rejected;
   *   they are probed again with backoff (1 s doubling to 5 min) and
   *   `nextProbeAt` says when a call may next probe.
   * @throws {AbortedError} When the signal aborted (see the abort rule).
   * @throws {TokenEndpointUnavailableError} When retries ran out on 5xx, network errors or timeouts.
   * @throws {RateLimitedError} When the token endpoint kept answering 429.
   */
  getAccessToken(options?: GetAccessTokenOptions): Promise<string>;
  /**
   * `fetch` with `Authorization: Bearer`; a 401 with a stale-token challenge
   * invalidates that token and replays the request once; a 429 for an
   * idempotent method waits `Retry-After` and sends again (see
   * `apiRateLimit`). Responses are returned as `fetch` returns them.
   *
   * @throws {AbortedError} When the signal aborted (see the abort rule).
   * @throws {ClosedError} When the instance closed meanwhile.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * Verifies `to` with a fresh token request, then makes it active. If the
   * request fails, the active credential stays.
   *
   * @throws {RotationFailedError} When verification fails (cause: why).
   * @throws {AbortedError} When the signal aborted (the active one stays).
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
  /** A snapshot without secrets or tokens. It only reads: safe for a health endpoint. */
  status(): AuthStatus;
  /** Aborts requests in flight (token requests and `fetch` calls) and waits for them; later calls throw {@linkcode ClosedError}. */
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
  let sharedAcquisition: Promise<string> | undefined;
  let servedGrant: CachedGrant | undefined;
  let servedToken: Promise<string> | undefined;

  const emit = (event: AuthEvent): void => {
    try {
      // A listener's bug, thrown or rejected, must not break authentication
      // nor crash the process with an unhandled rejection.
      const result: unknown = options.onEvent?.(event);
      if (result instanceof Promise) result.catch(() => undefined);
    } catch {
      // Dropped, as above.
    }
  };
  /** Every secret and token this instance holds, in every echoed form. */
  const redact = createRedactor(function* () {
    for (const [label, slot] of slots) {
      const { clientId, clientSecret } = slot.credential;
      yield* credentialForms(clientId, clientSecret.reveal());
      for (const member of pools.get(label) ?? [slot]) {
        const token = tokenStore.get(member.key)?.accessToken;
        if (token !== undefined) yield token;
      }
    }
  });
  const inFlight = new Set<CredentialSlot>();
  const slotContext = {
    config,
    store: tokenStore,
    emit,
    closeSignal: closeController.signal,
    inFlight,
    redact,
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
  warnings.forEach(emitWarning);
  if (activeStore.get() === undefined) activeStore.set(config.active);
  else repairActive();

  function emitWarning(warning: ConfigWarning): void {
    emit({ type: "warning", ...warning });
  }

  /**
   * The active label, read only: the active store's, or, when it names no
   * configured credential, the one {@linkcode repairActive} would pick.
   */
  function activeLabel(): string {
    const label = activeStore.get();
    return label !== undefined && slots.has(label)
      ? label
      : fallbackSlot().label;
  }

  function fallbackSlot(): CredentialSlot {
    return pickStandby(undefined) ?? slots.values().next().value!;
  }

  /**
   * The active slot; when the active store names no configured credential
   * (a shared store written by another configuration), writes the fallback
   * there and says so with a warning. Only the serving path repairs.
   */
  function repairActive(): CredentialSlot {
    const label = activeStore.get();
    const slot = label === undefined ? undefined : slots.get(label);
    if (slot !== undefined) return slot;
    const fallback = fallbackSlot();
    activeStore.set(fallback.label);
    emitWarning({
      code: "ACTIVE_UNKNOWN",
      label: fallback.label,
      message: `The active store named "${label}", which is not configured (${
        [...slots.keys()].join(", ")
      }); "${fallback.label}" is active now. Check what writes the shared active store.`,
    });
    return fallback;
  }

  function getAccessToken(
    callOptions?: GetAccessTokenOptions,
  ): Promise<string> {
    try {
      if (closed) throw new ClosedError();
      const signal = callOptions?.signal;
      if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
      const now = clock.now();
      if (now < lastNow) onClockWentBack(lastNow - now);
      lastNow = now;
      const label = activeStore.get() ?? "";
      // Without a pool the credential's slot serves: no pool lookup here.
      const slot = pooled ? servingSlot(label) : slots.get(label);
      const grant = slot?.servable(now);
      if (grant !== undefined && !slot!.needsRefresh(now, grant)) {
        if (fleetLink !== undefined) fleetLink.used(label, now);
        // One settled promise per grant, shared by every caller it serves.
        if (grant !== servedGrant) {
          servedGrant = grant;
          servedToken = Promise.resolve(grant.accessToken);
        }
        return servedToken!;
      }
      if (signal !== undefined) return acquire(signal, slot);
      // Waiters without a signal share one acquisition: a cold herd costs
      // one promise, not one async frame per caller.
      if (sharedAcquisition === undefined) {
        const acquisition = acquire(undefined, slot).finally(() => {
          if (sharedAcquisition === acquisition) sharedAcquisition = undefined;
        });
        sharedAcquisition = acquisition;
      }
      return sharedAcquisition;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Forgets the promises shared among callers, so none outlives its grant. */
  function dropSharedPromises(): void {
    sharedAcquisition = undefined;
    servedGrant = undefined;
    servedToken = undefined;
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

  /** A credential's rejected pool member, if any: the credential stands rejected. */
  function rejectedMember(label: string): CredentialSlot | undefined {
    const pool = pools.get(label);
    if (pool === undefined || pool.length === 1) {
      return pool?.[0].rejection ? pool[0] : undefined;
    }
    return pool.find((slot) => slot.rejection);
  }

  /** A credential's rejection, if any of its pool members was rejected. */
  function rejectionOf(label: string): CredentialRejectedError | undefined {
    return rejectedMember(label)?.rejection;
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
      const active = repairActive();
      // The first lap keeps the pool member the fast path chose, so the pool
      // is handed out in turn; a rejected member speaks for its credential.
      const member = lap === 0 && chosen?.label === active.label &&
          isCurrent(chosen)
        ? chosen
        : servingSlot(active.label) ?? active;
      const slot = rejectedMember(member.label) ?? member;
      const now = clock.now();
      const cached = slot.servable(now);
      if (cached !== undefined) {
        if (slot.needsRefresh(now, cached)) {
          refreshAhead(slot, now);
          warmStandby(slot, now);
        }
        if (fleetLink !== undefined) fleetLink.used(slot.label, now);
        return cached.accessToken;
      }
      try {
        const grant = slot.rejection ? probeOrFail(slot, now) : slot.acquire();
        const fresh = await abortable(grant, signal);
        // A credential removed meanwhile must not serve; the next lap picks
        // from the current list.
        if (clock.now() < fresh.expiresAt && isCurrent(slot)) {
          warmStandby(slot, clock.now());
          if (fleetLink !== undefined) fleetLink.used(slot.label, clock.now());
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

  /**
   * The token of a rejected active slot: a failover when another credential
   * may serve; else, so that a brief fault never becomes a permanent outage,
   * a probe of the first rejected credential whose backoff has passed (the
   * active one first; one in flight is joined). A probe that succeeds on
   * another credential makes it active.
   */
  function probeOrFail(
    slot: CredentialSlot,
    now: number,
  ): Promise<CachedGrant> {
    const rejection = slot.rejection!;
    if (pickStandby(slot.label) !== undefined) return Promise.reject(rejection);
    const others = [...slots.values()].filter((other) => other !== slot);
    for (const candidate of [slot, ...others]) {
      const probe = candidate.probe(now);
      if (probe === undefined) continue;
      if (candidate === slot) return probe;
      return probe.then((grant) => {
        if (slots.get(candidate.label) === candidate) {
          activeStore.set(candidate.label);
          fleetLink?.failedOver(candidate.label);
          emit({
            type: "failover",
            from: slot.label,
            to: candidate.label,
            error: summariseError(rejection),
          });
        }
        return grant;
      });
    }
    return Promise.reject(allRejected(rejection));
  }

  function allRejected(cause: unknown): AllCredentialsRejectedError {
    const now = clock.now();
    const probes = [...slots.values()]
      .map((slot) => slot.nextProbeAt)
      .filter((at): at is number => at !== undefined);
    return new AllCredentialsRejectedError(
      [...slots.values()].map((slot) => ({
        label: slot.label,
        state: slot.state(now),
        oauthError: rejectionOf(slot.label)?.oauthError,
        status: rejectionOf(slot.label)?.status,
      })),
      { cause },
      probes.length === 0 ? undefined : { at: Math.min(...probes), now },
    );
  }

  /**
   * With `warmStandby`, keeps a token of the healthiest standby cached,
   * refreshed along with the active one's, so a failover serves at once.
   * Its failures are only recorded (a rejection marks it, as any would).
   */
  function warmStandby(active: CredentialSlot, now: number): void {
    if (!config.warmStandby || closed) return;
    const standby = pickStandby(active.label);
    if (standby === undefined || !standby.needsRefresh(now)) return;
    const refresh = standby.refreshAhead(now);
    if (refresh === undefined) return;
    const tracked = refresh.catch(() => undefined)
      .finally(() => background.delete(tracked));
    background.add(tracked);
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
    if (next === undefined) throw allRejected(error);
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
      slot.servable(now) ? 0 : slot.lastError ? 2 : 1;
    return [...slots.values()]
      .filter((slot) => slot.label !== exclude && !rejectionOf(slot.label))
      .sort((a, b) => rank(a) - rank(b))[0];
  }

  function rotate(rotateOptions: RotateOptions): Promise<RotationResult> {
    const signal = rotateOptions?.signal;
    if (signal?.aborted) {
      return Promise.reject(new AbortedError({ cause: signal.reason }));
    }
    const run = rotation.then(() => rotateNow(rotateOptions));
    rotation = run.catch(() => undefined);
    return run;
  }

  async function rotateNow({ to, signal }: RotateOptions) {
    if (closed) throw new ClosedError();
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
    const target = slots.get(to);
    if (target === undefined) {
      throw new UnknownCredentialError(to, [...slots.keys()]);
    }
    const from = activeLabel();
    let grant;
    try {
      grant = await abortable(target.verify(), signal);
    } catch (error) {
      // The abort rule: the caller's abort is AbortedError, as everywhere.
      if (error instanceof AbortedError) throw error;
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
    dropSharedPromises();
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
      active: activeLabel(),
      credentials: [...slots.values()].map((slot) => {
        const grant = slot.servable(now);
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
    await follower?.stop();
    closed = true;
    dropSharedPromises();
    closeController.abort(new ClosedError());
    // A fleet member leaving first ends waits on the fleet's leases, so
    // they do not hold close() up.
    const leaving = fleetLink?.close();
    const pending = [...inFlight].map((slot) => {
      const request = slot.inflight;
      slot.abort(new ClosedError());
      return request;
    });
    const waiting = [...pools.values()].flat().map((slot) => slot.inflight);
    await Promise.allSettled([...pending, ...waiting, ...background, rotation]);
    await leaving;
  }

  const fetchContext: AuthorizedFetchContext = {
    getAccessToken,
    invalidate,
    fetch: config.fetch,
    closeSignal: closeController.signal,
    ...(config.apiRateLimit === false
      ? {}
      : { clock, rateLimit: config.apiRateLimit, emit }),
  };
  const auth: DualSecretAuth = {
    getAccessToken,
    fetch: (input, init) => authorizedFetch(fetchContext, input, init),
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
  const follower = options.source
    ? followSource(auth, options.source, {
      credentials: config.credentials,
      active: config.active,
    }, emitWarning)
    : undefined;
  Object.defineProperty(auth, Symbol.for("Deno.customInspect"), {
    value: () =>
      `DualSecretAuth { active: "${activeStore.get()}", credentials: [${
        [...slots.keys()].map((label) => `"${label}"`).join(", ")
      }]${closed ? ", closed" : ""} }`,
  });
  return Object.freeze(auth);
}
