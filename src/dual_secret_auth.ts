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
  type ResolvedConfig,
  type ResolvedCredential,
} from "./config.ts";
import {
  CredentialSlot,
  type CredentialState,
  type SlotContext,
} from "./credential_slot.ts";
import {
  AbortedError,
  AllCredentialsRejectedError,
  CredentialRejectedError,
  ErrorCode,
  RotationFailedError,
  TokenEndpointUnavailableError,
} from "./errors.ts";
import {
  type AuthEvent,
  type AuthEventListener,
  deliver,
  type ErrorSummary,
  summariseError,
} from "./events.ts";
import { credentialForms, redactAll } from "./redact.ts";
import {
  type CachedGrant,
  createMemorySharedState,
  type SharedState,
} from "./store.ts";

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
 * calls in flight with `AbortedError` (code `CLOSED`).
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
   * invalidates that token and replays the request once, unless that token
   * came from a replay moments ago or ended a chain of them (then the 401 is
   * returned with an `api.replay_skipped` event, so a 401 storm cannot drain
   * the token budget; see docs/library.md, the 401 replay rule); a 429 for an
   * idempotent method waits `Retry-After` and sends again (see
   * `apiRateLimit`). Responses are returned as `fetch` returns them.
   *
   * @throws {AbortedError} When the signal aborted (see the abort rule).
   * @throws {AbortedError} When the instance closed meanwhile (code `CLOSED`).
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /**
   * Verifies `to` with a fresh token request, then makes it active. If the
   * request fails, the active credential stays.
   *
   * @throws {RotationFailedError} When verification fails (cause: why), or
   *   `to` is not configured (code `UNKNOWN_CREDENTIAL`).
   * @throws {AbortedError} When the signal aborted (the active one stays).
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
  /** Aborts requests in flight (token requests and `fetch` calls) and waits for them; later calls throw {@linkcode AbortedError} (code `CLOSED`). */
  close(): Promise<void>;
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
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
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
  return Object.freeze(new Auth(options));
}

const inspect = Symbol.for("Deno.customInspect");

/**
 * The instance: one class, so its methods live once on the prototype rather
 * than as closures per instance (about 60 B each).
 */
class Auth implements DualSecretAuth {
  // The methods live once on the prototype: own arrow fields (so that they
  // worked detached) cost about 40 B each per instance. Call them on the
  // instance; a wrapper (./otel's instrument) delegates.
  getAccessToken(callOptions?: GetAccessTokenOptions): Promise<string> {
    return this.#getAccessToken(callOptions);
  }
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    return this.#fetch(input, init);
  }
  rotate(rotateOptions: RotateOptions): Promise<RotationResult> {
    return this.#rotate(rotateOptions);
  }
  invalidate(token?: string): void {
    this.#invalidate(token);
  }
  setCredentials(list: readonly CredentialInput[]): void {
    this.#setCredentials(list);
  }
  status(): AuthStatus {
    return this.#status();
  }
  close(): Promise<void> {
    return this.#close();
  }
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }
  [inspect](): string {
    return this.#inspect();
  }
  readonly #onEvent: DualSecretAuthOptions["onEvent"];
  readonly #config: ResolvedConfig;
  readonly #shared: SharedState;
  /** Whether the shared state wants to hear which credential served (a fleet's heartbeat). */
  readonly #notesUse: boolean;
  /** Made when first needed: the first `fetch` or `close()`. */
  #closeController: AbortController | undefined;
  readonly #slotContext: SlotContext;
  /** What `fetch` needs, made by the first call (many users only get tokens). */
  #fetchContext: AuthorizedFetchContext | undefined;
  /** Background refreshes, created on the first one. */
  #background: Set<Promise<unknown>> | undefined;
  #slots = new Map<string, CredentialSlot>();
  // Pool members of each credential ([0] is the credential's slot in
  // `slots`); only with a pool (tokensPerCredential > 1), else the slots are
  // the members.
  #pools: Map<string, CredentialSlot[]> | undefined;
  #turn = 0;
  /** The last rotation, which the next one waits for; made by the first. */
  #rotation: Promise<unknown> | undefined;
  #closed = false;
  #lastNow: number;
  #sharedAcquisition: Promise<string> | undefined;
  // The grant served last (unpooled), its slot and label, and until when it
  // may be served without a refresh: the fast path's one store read.
  #servedGrant: CachedGrant | undefined;
  #servedToken: Promise<string> | undefined;
  #servedLabel: string | undefined;
  #servedSlot: CredentialSlot | undefined;
  #servedUntil = 0;

  constructor(options: DualSecretAuthOptions) {
    const warnings: ConfigWarning[] = [];
    const config = this.#config = resolveConfig(options, warnings);
    this.#onEvent = options.onEvent;
    this.#lastNow = config.clock.now();
    const shared = this.#shared = options.shared ??
      createMemorySharedState(config.active);
    if (shared.attach !== undefined) this.#attach(shared, config);
    this.#notesUse = typeof shared.used === "function";
    this.#slotContext = new Auth.#SlotServices(
      this,
      config,
      shared,
      options.onEvent,
    );
    for (const credential of config.credentials) {
      this.#slots.set(credential.label, this.#newSlot(credential));
    }
    if (config.tokensPerCredential > 1) {
      const pools = this.#pools = new Map();
      for (const slot of this.#slots.values()) {
        pools.set(slot.label, this.#newPool(slot));
      }
    }
    for (const warning of warnings) this.#emitWarning(warning);
    if (shared.getActive() === undefined) {
      shared.setActive(config.active, "start");
    } else this.#repairActive();
  }

  /**
   * What the slots use of the instance. A class, so `redact` lives on its
   * prototype rather than as a closure per instance; nested here, so it
   * reaches the instance's secrets.
   */
  static readonly #SlotServices = class implements SlotContext {
    closeSignal: AbortSignal | undefined = undefined;
    // Set by the first request and dropped when none is in flight.
    inFlight: Set<CredentialSlot> | undefined = undefined;
    constructor(
      readonly owner: Auth,
      readonly config: ResolvedConfig,
      readonly store: SharedState,
      readonly onEvent: AuthEventListener | undefined,
    ) {}
    /** Every secret and token the instance holds, in every echoed form. */
    redact(text: string): string {
      return redactAll(text, this.owner.#knownSecrets());
    }
  };

  /** Attaches shared state that wants to know the instance (a fleet). */
  #attach(shared: SharedState, config: ResolvedConfig): void {
    shared.attach!({
      tokenUrl: config.tokenUrl,
      ...(config.scope === undefined ? {} : { scope: config.scope }),
      ...(config.tokenParams === undefined ||
          Object.keys(config.tokenParams).length === 0
        ? {}
        : { tokenParams: config.tokenParams }),
      credentials: config.credentials,
      active: config.active,
      tokensPerCredential: config.tokensPerCredential,
      clock: config.clock,
      fetch: config.fetch,
      requestTimeoutMs: config.requestTimeoutMs,
      retry: config.retry,
      warn: (code, message, label) =>
        this.#emitWarning({ code, message, ...(label ? { label } : {}) }),
      setCredentials: (list) => this.#setCredentials(list),
    });
  }

  *#knownSecrets(): Generator<string> {
    for (const [label, slot] of this.#slots) {
      const { clientId, clientSecret } = slot.credential;
      yield* credentialForms(clientId, clientSecret.reveal());
      for (const member of this.#pools?.get(label) ?? [slot]) {
        const token = this.#shared.getGrant(member.key)?.accessToken;
        if (token !== undefined) yield token;
      }
    }
  }

  #emit(event: AuthEvent): void {
    deliver(this.#onEvent, event);
  }

  #emitWarning(warning: ConfigWarning): void {
    this.#emit({ type: "warning", ...warning });
  }

  #newSlot(credential: ResolvedCredential): CredentialSlot {
    return new CredentialSlot(credential, this.#slotContext);
  }

  #newPool(first: CredentialSlot): CredentialSlot[] {
    const pool = [first];
    for (let i = 1; i < this.#config.tokensPerCredential; i++) {
      pool.push(new CredentialSlot(first.credential, this.#slotContext, i));
    }
    return pool;
  }

  #track(promise: Promise<unknown>): void {
    const background = this.#background ??= new Set();
    const tracked = promise.finally(() => background.delete(tracked));
    background.add(tracked);
  }

  /**
   * The active label, read only: the active store's, or, when it names no
   * configured credential, the one {@linkcode Auth.#repairActive} would pick.
   */
  #activeLabel(): string {
    const label = this.#shared.getActive();
    return label !== undefined && this.#slots.has(label)
      ? label
      : this.#fallbackSlot().label;
  }

  #fallbackSlot(): CredentialSlot {
    return this.#pickStandby(undefined) ?? this.#slots.values().next().value!;
  }

  /**
   * The active slot; when the active store names no configured credential
   * (a shared store written by another configuration), writes the fallback
   * there and says so with a warning. Only the serving path repairs.
   */
  #repairActive(): CredentialSlot {
    const label = this.#shared.getActive();
    const slot = label === undefined ? undefined : this.#slots.get(label);
    if (slot !== undefined) return slot;
    const fallback = this.#fallbackSlot();
    this.#shared.setActive(fallback.label, "repair");
    this.#emitWarning({
      code: "ACTIVE_UNKNOWN",
      label: fallback.label,
      message: `The active store named "${label}", which is not configured (${
        [...this.#slots.keys()].join(", ")
      }); "${fallback.label}" is active now. Check what writes the shared active store.`,
    });
    return fallback;
  }

  #getAccessToken(callOptions?: GetAccessTokenOptions): Promise<string> {
    try {
      if (this.#closed) throw new AbortedError({ closed: true });
      const signal = callOptions?.signal;
      if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
      const now = this.#config.clock.now();
      if (now < this.#lastNow) this.#onClockWentBack(this.#lastNow - now);
      this.#lastNow = now;
      const label = this.#shared.getActive() ?? "";
      if (label === this.#servedLabel) {
        // The grant served last, still in the store, before its refresh
        // time: its slot checked its expiry and client id when it was served.
        const slot = this.#servedSlot!;
        if (
          now < this.#servedUntil && slot.rejection === undefined &&
          this.#shared.getGrant(slot.key) === this.#servedGrant
        ) {
          if (this.#notesUse) this.#shared.used!(label, now);
          return this.#servedToken!;
        }
      }
      // Without a pool the credential's slot serves: no pool lookup here.
      const slot = this.#pools !== undefined
        ? this.#servingSlot(label)
        : this.#slots.get(label);
      const grant = slot?.servable(now);
      if (grant !== undefined && !slot!.needsRefresh(now, grant)) {
        if (this.#notesUse) this.#shared.used!(label, now);
        // One settled promise per grant, shared by every caller it serves.
        if (grant !== this.#servedGrant) {
          this.#servedGrant = grant;
          this.#servedToken = Promise.resolve(grant.accessToken);
        }
        if (this.#pools === undefined) {
          this.#servedLabel = label;
          this.#servedSlot = slot;
          this.#servedUntil = Math.min(grant.refreshAt, grant.expiresAt);
        }
        return this.#servedToken!;
      }
      if (signal !== undefined) return this.#acquire(signal, slot);
      // Waiters without a signal share one acquisition: a cold herd costs
      // one promise, not one async frame per caller.
      if (this.#sharedAcquisition === undefined) {
        const acquisition = this.#acquire(undefined, slot).finally(() => {
          if (this.#sharedAcquisition === acquisition) {
            this.#sharedAcquisition = undefined;
          }
        });
        this.#sharedAcquisition = acquisition;
      }
      return this.#sharedAcquisition;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    return authorizedFetch(
      this.#fetchContext ??= this.#newFetchContext(),
      input,
      init,
    );
  }

  /** The signal aborted by `close()`, made (and given to the slots) on first use. */
  #closeSignal(): AbortSignal {
    if (this.#closeController === undefined) {
      this.#closeController = new AbortController();
      this.#slotContext.closeSignal = this.#closeController.signal;
    }
    return this.#closeController.signal;
  }

  #newFetchContext(): AuthorizedFetchContext {
    const config = this.#config;
    return {
      getAccessToken: (callOptions) => this.getAccessToken(callOptions),
      invalidate: (token) => this.invalidate(token),
      activeLabel: () => this.#activeLabel(),
      fetch: config.fetch,
      closeSignal: this.#closeSignal(),
      ...(config.apiRateLimit === false ? {} : {
        clock: this.#config.clock,
        rateLimit: config.apiRateLimit,
        emit: (event) => deliver(this.#onEvent, event),
      }),
    };
  }

  /** Forgets the promises shared among callers, so none outlives its grant. */
  #dropSharedPromises(): void {
    this.#sharedAcquisition = undefined;
    this.#servedGrant = undefined;
    this.#servedToken = undefined;
    this.#servedLabel = undefined;
    this.#servedSlot = undefined;
    this.#servedUntil = 0;
  }

  /** The pool member that serves the next call: in turn over this instance's share of the pool. */
  #servingSlot(label: string): CredentialSlot | undefined {
    const pool = this.#pools?.get(label);
    if (pool === undefined) return this.#slots.get(label);
    const indexes = this.#shared.slotsOf?.(label) ?? allIndexes(pool.length);
    return pool[indexes[this.#turn++ % indexes.length]] ?? pool[0];
  }

  /** Every pool member (without a pool, every slot). */
  #members(): CredentialSlot[] {
    return this.#pools === undefined
      ? [...this.#slots.values()]
      : [...this.#pools.values()].flat();
  }

  /** Whether a slot still belongs to the configured credentials (not replaced). */
  #isCurrent(slot: CredentialSlot): boolean {
    return (this.#pools === undefined
      ? this.#slots.get(slot.label)
      : this.#pools.get(slot.label)?.[slot.poolIndex]) === slot;
  }

  /** A credential's rejected pool member, if any: the credential stands rejected. */
  #rejectedMember(label: string): CredentialSlot | undefined {
    const pool = this.#pools?.get(label);
    if (pool === undefined) {
      const slot = this.#slots.get(label);
      return slot?.rejection ? slot : undefined;
    }
    return pool.find((slot) => slot.rejection);
  }

  /** A credential's rejection, if any of its pool members was rejected. */
  #rejectionOf(label: string): CredentialRejectedError | undefined {
    return this.#rejectedMember(label)?.rejection;
  }

  /**
   * Expiry times are wall-clock times; after the clock steps back they would
   * outlive the server's view of the tokens, so every cached token goes.
   */
  #onClockWentBack(byMs: number): void {
    this.invalidate();
    this.#emitWarning({
      code: "CLOCK_WENT_BACK",
      message:
        `The clock went back by ${byMs} ms; cached tokens were dropped and will be requested again.`,
    });
  }

  #used(label: string, now: number): void {
    if (this.#notesUse) this.#shared.used!(label, now);
  }

  async #acquire(
    signal: AbortSignal | undefined,
    chosen?: CredentialSlot,
  ): Promise<string> {
    const clock = this.#config.clock;
    // Each lap either returns or fails one credential over; a token that
    // expired on its way here (a clock jump, a tiny lifetime) costs a lap too.
    for (let lap = 0; lap <= this.#slots.size + 2; lap++) {
      if (this.#closed) throw new AbortedError({ closed: true });
      const active = this.#repairActive();
      // The first lap keeps the pool member the fast path chose, so the pool
      // is handed out in turn; a rejected member speaks for its credential.
      const member = lap === 0 && chosen?.label === active.label &&
          this.#isCurrent(chosen)
        ? chosen
        : this.#servingSlot(active.label) ?? active;
      const slot = this.#rejectedMember(member.label) ?? member;
      const now = clock.now();
      const cached = slot.servable(now);
      if (cached !== undefined) {
        if (slot.needsRefresh(now, cached)) {
          this.#refreshAhead(slot, now);
          this.#warmStandby(slot, now);
        }
        this.#used(slot.label, now);
        return cached.accessToken;
      }
      try {
        const grant = slot.rejection
          ? this.#probeOrFail(slot, now)
          : slot.acquire();
        const fresh = await abortable(grant, signal);
        // A credential removed meanwhile must not serve; the next lap picks
        // from the current list.
        if (clock.now() < fresh.expiresAt && this.#isCurrent(slot)) {
          this.#warmStandby(slot, clock.now());
          this.#used(slot.label, clock.now());
          return fresh.accessToken;
        }
      } catch (error) {
        if (!(error instanceof CredentialRejectedError)) throw error;
        // A credential replaced while its request was in flight: its
        // successor gets its own request on the next lap.
        if (this.#isCurrent(slot)) this.#failover(slot, error);
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
  #probeOrFail(slot: CredentialSlot, now: number): Promise<CachedGrant> {
    const rejection = slot.rejection!;
    if (this.#pickStandby(slot.label) !== undefined) {
      return Promise.reject(rejection);
    }
    const others = [...this.#slots.values()].filter((other) => other !== slot);
    for (const candidate of [slot, ...others]) {
      const probe = candidate.probe(now);
      if (probe === undefined) continue;
      if (candidate === slot) return probe;
      return probe.then((grant) => {
        if (this.#slots.get(candidate.label) === candidate) {
          this.#shared.setActive(candidate.label, "failover");
          this.#emit({
            type: "failover",
            from: slot.label,
            to: candidate.label,
            error: summariseError(rejection),
          });
        }
        return grant;
      });
    }
    return Promise.reject(this.#allRejected(rejection));
  }

  #allRejected(cause: unknown): AllCredentialsRejectedError {
    const now = this.#config.clock.now();
    const slots = [...this.#slots.values()];
    const probes = slots
      .map((slot) => slot.nextProbeAt)
      .filter((at): at is number => at !== undefined);
    return new AllCredentialsRejectedError(
      slots.map((slot) => ({
        label: slot.label,
        state: slot.state(now),
        oauthError: this.#rejectionOf(slot.label)?.oauthError,
        status: this.#rejectionOf(slot.label)?.status,
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
  #warmStandby(active: CredentialSlot, now: number): void {
    if (!this.#config.warmStandby || this.#closed) return;
    const standby = this.#pickStandby(active.label);
    if (standby === undefined || !standby.needsRefresh(now)) return;
    const refresh = standby.refreshAhead(now);
    if (refresh === undefined) return;
    this.#track(refresh.catch(() => undefined));
  }

  #refreshAhead(slot: CredentialSlot, now: number): void {
    const refresh = slot.refreshAhead(now);
    if (refresh === undefined) return;
    this.#track(refresh.catch((error) => {
      // Transient failures keep the still-valid token in service; a
      // rejection moves traffic to a standby before the token runs out.
      if (
        error instanceof CredentialRejectedError && !this.#closed &&
        this.#isCurrent(slot)
      ) {
        try {
          this.#failover(slot, error);
        } catch {
          // Every credential rejected: callers learn it once the token expires.
        }
      }
    }));
  }

  #failover(from: CredentialSlot, error: CredentialRejectedError): void {
    const current = this.#shared.getActive();
    if (current !== from.label && this.#slots.has(current!)) {
      return; // Another caller already moved traffic on.
    }
    const next = this.#pickStandby(from.label);
    if (next === undefined) throw this.#allRejected(error);
    this.#shared.setActive(next.label, "failover");
    this.#emit({
      type: "failover",
      from: from.label,
      to: next.label,
      error: summariseError(error),
    });
  }

  /** The healthiest credential that is not rejected: one with a token first, then one that has not failed, then configured order. */
  #pickStandby(exclude: string | undefined): CredentialSlot | undefined {
    const now = this.#config.clock.now();
    const rank = (slot: CredentialSlot) =>
      slot.servable(now) ? 0 : slot.lastError ? 2 : 1;
    return [...this.#slots.values()]
      .filter((slot) =>
        slot.label !== exclude && !this.#rejectionOf(slot.label)
      )
      .sort((a, b) => rank(a) - rank(b))[0];
  }

  #rotate(rotateOptions: RotateOptions): Promise<RotationResult> {
    const signal = rotateOptions?.signal;
    if (signal?.aborted) {
      return Promise.reject(new AbortedError({ cause: signal.reason }));
    }
    const run = (this.#rotation ?? Promise.resolve()).then(() =>
      this.#rotateNow(rotateOptions)
    );
    this.#rotation = run.catch(() => undefined);
    return run;
  }

  async #rotateNow({ to, signal }: RotateOptions): Promise<RotationResult> {
    if (this.#closed) throw new AbortedError({ closed: true });
    if (signal?.aborted) throw new AbortedError({ cause: signal.reason });
    const target = this.#slots.get(to);
    if (target === undefined) {
      throw new RotationFailedError(this.#activeLabel(), to, {
        known: [...this.#slots.keys()],
      });
    }
    const from = this.#activeLabel();
    let grant;
    try {
      grant = await abortable(target.verify(), signal);
    } catch (error) {
      // The abort rule: the caller's abort is AbortedError, as everywhere;
      // close() meanwhile is a failed rotation (cause: CLOSED).
      if (error instanceof AbortedError && error.code === ErrorCode.ABORTED) {
        throw error;
      }
      throw new RotationFailedError(from, to, { cause: error });
    }
    if (this.#slots.get(to) !== target) {
      throw new RotationFailedError(from, to, {
        known: [...this.#slots.keys()],
      });
    }
    // The proof clears the credential's rejection: pool members rejected
    // before it start afresh.
    const pool = this.#pools?.get(to) ?? [];
    for (let i = 1; i < pool.length; i++) {
      if (pool[i].rejection) {
        pool[i].retire();
        pool[i] = new CredentialSlot(target.credential, this.#slotContext, i);
      }
    }
    await this.#shared.setActive(to, "rotate");
    this.#emit({ type: "rotated", from, to });
    return { from, to, expiresAt: grant.expiresAt };
  }

  #invalidate(token?: string): void {
    this.#dropSharedPromises();
    for (const slot of this.#members()) {
      const grant = this.#shared.getGrant(slot.key);
      if (
        grant !== undefined &&
        (token === undefined || grant.accessToken === token)
      ) {
        slot.invalidate(grant);
      }
    }
  }

  #setCredentials(list: readonly CredentialInput[]): void {
    if (this.#closed) throw new AbortedError({ closed: true });
    const newWarnings: ConfigWarning[] = [];
    const credentials = resolveCredentials(list, newWarnings);
    const slots = this.#slots;
    const pools = this.#pools;
    const next = new Map<string, CredentialSlot>();
    for (const credential of credentials) {
      const current = slots.get(credential.label);
      const unchanged = current !== undefined &&
        current.credential.clientId === credential.clientId &&
        current.credential.authMethod === credential.authMethod &&
        current.credential.clientSecret.equals(credential.clientSecret);
      next.set(
        credential.label,
        unchanged ? current : this.#newSlot(credential),
      );
    }
    if (pools === undefined) {
      for (const [label, slot] of slots) {
        if (next.get(label) !== slot) slot.retire();
      }
    } else {
      const nextPools = new Map<string, CredentialSlot[]>();
      for (const [label, slot] of next) {
        nextPools.set(
          label,
          slots.get(label) === slot ? pools.get(label)! : this.#newPool(slot),
        );
      }
      for (const [label, pool] of pools) {
        if (nextPools.get(label) !== pool) {
          pool.forEach((slot) => slot.retire());
        }
      }
      this.#pools = nextPools;
    }
    this.#slots = next;
    // The fast path's slot may be one just replaced.
    this.#servedLabel = undefined;
    this.#servedSlot = undefined;
    this.#shared.credentialsChanged?.(credentials);
    newWarnings.forEach((warning) => this.#emitWarning(warning));
    const active = this.#shared.getActive();
    if (active === undefined || !next.has(active)) {
      const replacement = this.#pickStandby(undefined) ?? [...next.values()][0];
      this.#shared.setActive(replacement.label, "repair");
      this.#emitWarning({
        code: "ACTIVE_REMOVED",
        label: replacement.label,
        message:
          `The active credential "${active}" was removed; "${replacement.label}" is active now.`,
      });
    }
  }

  #status(): AuthStatus {
    const now = this.#config.clock.now();
    return {
      active: this.#activeLabel(),
      credentials: [...this.#slots.values()].map((slot) => {
        const grant = slot.servable(now);
        return {
          label: slot.label,
          clientId: slot.credential.clientId,
          state: slot.state(now),
          ...(grant ? { expiresAt: grant.expiresAt } : {}),
          ...(slot.lastError ? { lastError: slot.lastError } : {}),
        };
      }),
    };
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dropSharedPromises();
    const reason = new AbortedError({ closed: true });
    this.#closeSignal();
    this.#closeController!.abort(reason);
    // API calls with a caller's signal follow it through their own
    // controller (see authorizedFetch): abort those too.
    for (const call of this.#fetchContext?.linked ?? []) call.abort(reason);
    // Shared state (a fleet member) leaving first ends waits on the fleet's
    // leases, so they do not hold close() up.
    const leaving = this.#shared.close?.();
    const pending = [...this.#slotContext.inFlight ?? []].map((slot) => {
      const request = slot.inflight;
      slot.abort(new AbortedError({ closed: true }));
      return request;
    });
    const waiting = this.#members().map((slot) => slot.inflight);
    await Promise.allSettled([
      ...pending,
      ...waiting,
      ...(this.#background ?? []),
      this.#rotation,
    ]);
    await leaving;
  }

  #inspect(): string {
    return `DualSecretAuth { active: "${this.#shared.getActive()}", credentials: [${
      [...this.#slots.keys()].map((label) => `"${label}"`).join(", ")
    }]${this.#closed ? ", closed" : ""} }`;
  }
}

/** 0 … length - 1, one array per pool size. */
const indexesBySize: number[][] = [];
function allIndexes(length: number): number[] {
  return indexesBySize[length] ??= Array.from({ length }, (_, i) => i);
}
