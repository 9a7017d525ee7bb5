/**
 * One credential: its cached grant, its single in-flight token request with
 * retries, and its rejection. A slot knows nothing of other slots; failover is
 * decided above it.
 *
 * @module
 */
import { isRetryable } from "./classify.ts";
import type { ResolvedConfig, ResolvedCredential } from "./config.ts";
import {
  AbortedError,
  CredentialRejectedError,
  DualSecretAuthError,
  RateLimitedError,
  TokenEndpointUnavailableError,
} from "./errors.ts";
import {
  type AuthEventListener,
  deliver,
  type ErrorSummary,
  summariseError,
} from "./events.ts";
import { type RetryVerdict, withRetry } from "./retry.ts";
import type { Redactor } from "./redact.ts";
import type { CachedGrant, SharedState } from "./store.ts";
import { requestToken, type TokenGrant } from "./token_endpoint.ts";

/**
 * The state of a credential, derived from its grant, its request and its
 * last error:
 * - `idle`: no token yet and nothing in flight;
 * - `fetching`: no usable token, a request is in flight;
 * - `ready`: a fresh token is cached;
 * - `stale`: the token is inside the refresh margin, still served, refresh due;
 * - `expired`: the cached token has expired and is never served;
 * - `unavailable`: no usable token and the last request failed transiently;
 * - `rejected`: the token endpoint rejected the credential; stays so until it
 *   is replaced, re-verified, or (when no credential serves) a probe with
 *   backoff succeeds.
 */
export type CredentialState =
  | "idle"
  | "fetching"
  | "ready"
  | "stale"
  | "expired"
  | "unavailable"
  | "rejected";

/** What a slot needs from its owner. */
export interface SlotContext {
  /** The resolved options. */
  readonly config: ResolvedConfig;
  /** Where grants are cached (and, in a fleet, requested through its leases). */
  readonly store: SharedState;
  /** Receives events (through {@linkcode deliver}). */
  readonly onEvent: AuthEventListener | undefined;
  /**
   * Aborted when the instance closes; made by the owner when first needed
   * (its first `fetch` or its close). Only read, never listened to: a
   * listener on a long-lived signal leaves memory behind per instance.
   */
  closeSignal?: AbortSignal;
  /**
   * The slots with a request in flight, for the owner's close to abort;
   * there only while one is (so an idle instance holds no set).
   */
  inFlight?: Set<CredentialSlot>;
  /** Redacts every secret and token of the instance from server text. */
  readonly redact: Redactor;
  /**
   * Set once a grant without `expires_in` was warned about, so the warning
   * comes once per instance, not once per refresh.
   */
  lifetimeAssumedWarned?: boolean;
}

/** The first wait before a rejected credential is probed again, when nothing else serves. */
export const REPROBE_INITIAL_DELAY_MS = 1_000;
/** The longest wait between probes of a rejected credential. */
export const REPROBE_MAX_DELAY_MS = 300_000;

const noop = () => {};

/** A token request's failure as {@linkcode withRetry} sees it: the server's wait, a backoff, or give up. */
function retryVerdict(error: DualSecretAuthError): RetryVerdict {
  if (!isRetryable(error)) return false;
  return error instanceof RateLimitedError && error.retryAfterMs !== undefined
    ? error.retryAfterMs
    : true;
}

/** The fraction of the refresh margin taken off at random, so a fleet spreads its refreshes. */
const REFRESH_JITTER = 0.2;

/** One credential's token cache and token requests. */
export class CredentialSlot {
  /** The credential. */
  readonly credential: ResolvedCredential;
  /** Which of the credential's pooled tokens this slot holds, from 0. */
  readonly poolIndex: number;
  /** Where its grant is stored: {@linkcode poolKey} of label and pool index. */
  readonly key: string;
  readonly #context: SlotContext;
  #inflight: Promise<CachedGrant> | undefined;
  #rejection: CredentialRejectedError | undefined;
  #lastError: ErrorSummary | undefined;
  #retired = false;
  #nextBackgroundAttemptAt = 0;
  #probeFailures = 0;
  #nextProbeAt = 0;
  #controller: AbortController | undefined;

  /**
   * Creates an empty slot.
   *
   * @param credential The credential.
   * @param context The owner's services.
   * @param poolIndex Which of the credential's pooled tokens it holds.
   */
  constructor(
    credential: ResolvedCredential,
    context: SlotContext,
    poolIndex = 0,
  ) {
    this.credential = credential;
    this.poolIndex = poolIndex;
    this.key = poolKey(credential.label, poolIndex);
    this.#context = context;
  }

  /** The credential's label. */
  get label(): string {
    return this.credential.label;
  }

  /** The rejection, while the credential stands rejected. */
  get rejection(): CredentialRejectedError | undefined {
    return this.#rejection;
  }

  /** The last failure, cleared by a success. */
  get lastError(): ErrorSummary | undefined {
    return this.#lastError;
  }

  /** The request in flight, if any. */
  get inflight(): Promise<CachedGrant> | undefined {
    return this.#inflight;
  }

  /**
   * When a probe of this rejected credential may next start (ms since the
   * epoch), or `undefined` when it is not rejected.
   */
  get nextProbeAt(): number | undefined {
    return this.#rejection ? this.#nextProbeAt : undefined;
  }

  /**
   * The grant this slot may serve at `now`: cached for this client id, not
   * expired, and the credential not rejected. The one rule of the fast path,
   * failover ranking, `state()` and `status()`.
   *
   * @param now The current time.
   * @returns The grant, or `undefined`.
   */
  servable(now: number): CachedGrant | undefined {
    const grant = this.#context.store.getGrant(this.key);
    return grant !== undefined && now < grant.expiresAt &&
        grant.clientId === this.credential.clientId &&
        this.#rejection === undefined
      ? grant
      : undefined;
  }

  /**
   * Whether a refresh is due at `now`: there is no servable grant, or it is
   * inside its refresh margin.
   *
   * @param now The current time.
   * @param grant The servable grant, when the caller already has it.
   * @returns Whether to refresh.
   */
  needsRefresh(
    now: number,
    grant: CachedGrant | undefined = this.servable(now),
  ): boolean {
    return grant === undefined || now >= grant.refreshAt;
  }

  /**
   * The credential's state, derived from its grant, request and errors.
   *
   * @param now The current time.
   * @returns The state at `now`.
   */
  state(now: number): CredentialState {
    if (this.#rejection) return "rejected";
    const grant = this.servable(now);
    if (grant !== undefined) {
      return this.needsRefresh(now, grant) ? "stale" : "ready";
    }
    if (this.#inflight) return "fetching";
    const stored = this.#context.store.getGrant(this.key);
    if (stored?.clientId === this.credential.clientId) return "expired";
    return this.#lastError ? "unavailable" : "idle";
  }

  /**
   * Probes a rejected credential again once its backoff (from
   * {@linkcode REPROBE_INITIAL_DELAY_MS}, doubling up to
   * {@linkcode REPROBE_MAX_DELAY_MS}) has passed: joins a probe in flight,
   * starts one when due, else returns `undefined`. For when no other
   * credential serves, so a brief fault never becomes a permanent outage.
   *
   * @param now The current time.
   * @returns The probe, or `undefined` when none is due.
   */
  probe(now: number): Promise<CachedGrant> | undefined {
    if (this.#rejection === undefined) return undefined;
    if (this.#inflight) return this.#inflight;
    if (now < this.#nextProbeAt) return undefined;
    deliver(this.#context.onEvent, {
      type: "reprobe",
      label: this.label,
      attempt: this.#probeFailures,
    });
    return this.acquire(false, "probe");
  }

  /**
   * Gets a new token; concurrent calls share one request (single flight). A
   * failed request is not kept: the next call tries again.
   *
   * @param background Whether callers are being served meanwhile (for events).
   * @param purpose In a fleet: `verify`, only a request sent now will do (not
   * the fleet's grant); `probe`, a rejected credential is tried again even if
   * the fleet saw it rejected.
   * @returns The new grant.
   */
  acquire(
    background = false,
    purpose: "serve" | "verify" | "probe" = "serve",
  ): Promise<CachedGrant> {
    if (this.#inflight === undefined) {
      this.#inflight = this.#throughFleet(background, purpose).finally(() => {
        this.#inflight = undefined;
      });
      // Callers that stopped waiting (aborted) must not leave the shared
      // request's failure unhandled; each caller still sees it.
      this.#inflight.catch(noop);
    }
    return this.#inflight;
  }

  /**
   * Gets a token with a request that starts now, not one already in flight:
   * the proof that the credential works as it is configured now.
   *
   * @returns The new grant.
   */
  async verify(): Promise<CachedGrant> {
    await this.#inflight?.catch(() => undefined);
    return await this.acquire(false, "verify");
  }

  /**
   * Starts a refresh ahead of expiry unless one is running or a recent one
   * failed; callers keep getting the current token meanwhile.
   *
   * @param now The current time.
   * @returns The refresh, or `undefined` when none was started.
   */
  refreshAhead(now: number): Promise<CachedGrant> | undefined {
    if (this.#inflight || now < this.#nextBackgroundAttemptAt) return undefined;
    this.#nextBackgroundAttemptAt = now + this.#context.config.retry.maxDelayMs;
    return this.acquire(true);
  }

  /**
   * Drops the cached grant: exactly the one given, or whichever is cached
   * (a newer grant written meanwhile by another caller stays when one is
   * given).
   *
   * @param grant The grant to drop.
   */
  invalidate(grant = this.#context.store.getGrant(this.key)): void {
    if (grant !== undefined) this.#context.store.deleteGrant(this.key, grant);
  }

  /**
   * Marks the slot as replaced: a request still in flight no longer writes
   * its grant, and the cached grant is dropped.
   */
  retire(): void {
    this.#retired = true;
    this.invalidate();
  }

  /** A fleet's grant or lease first; else this instance's own request. */
  async #throughFleet(
    background: boolean,
    purpose: "serve" | "verify" | "probe",
  ): Promise<CachedGrant> {
    const { store } = this.#context;
    if (store.request === undefined) {
      return await this.#requestWithRetry(background);
    }
    let sent = false;
    try {
      const grant = await store.request(
        this.label,
        this.poolIndex,
        {
          background,
          verify: purpose === "verify",
          probe: purpose === "probe",
        },
        () => {
          sent = true;
          return this.#requestWithRetry(background);
        },
      );
      if (!sent) this.#adopt(grant);
      return grant;
    } catch (error) {
      // A rejection the fleet already saw: fail over without sending one.
      throw sent ? error : this.#fail(this.#ours(error), background);
    }
  }

  /** Takes a grant another instance of the fleet requested. */
  #adopt(grant: CachedGrant): void {
    if (this.#retired) return;
    this.#context.store.setGrant(this.key, grant);
    this.#rejection = undefined;
    this.#lastError = undefined;
    this.#nextBackgroundAttemptAt = 0;
    this.#probeFailures = 0;
  }

  /**
   * Aborts the request in flight, if any (the owner closing).
   *
   * @param reason The abort reason.
   */
  abort(reason: unknown): void {
    this.#controller?.abort(reason);
  }

  async #requestWithRetry(background: boolean): Promise<CachedGrant> {
    const context = this.#context;
    const { config } = context;
    const inFlight = context.inFlight ??= new Set();
    const started = config.clock.now();
    let sentAt = started;
    const controller = new AbortController();
    const closeSignal = controller.signal;
    this.#controller = controller;
    inFlight.add(this);
    if (this.#context.closeSignal?.aborted) {
      controller.abort(this.#context.closeSignal.reason);
    }
    try {
      const grant = await withRetry(() => {
        sentAt = config.clock.now();
        return requestToken({
          tokenUrl: config.tokenUrl,
          label: this.label,
          clientId: this.credential.clientId,
          clientSecret: this.credential.clientSecret,
          scope: config.scope,
          authMethod: this.credential.authMethod,
          params: config.tokenParams,
          fetch: config.fetch,
          clock: config.clock,
          timeoutMs: config.requestTimeoutMs,
          maxResponseBytes: config.maxResponseBytes,
          defaultExpiresInSeconds: config.defaultExpiresInSeconds,
          signal: closeSignal,
          redact: (text) => context.redact(text),
        });
      }, {
        ...config.retry,
        clock: config.clock,
        random: config.random,
        signal: closeSignal,
        isRetriable: (error) => retryVerdict(this.#ours(error)),
        onRetry: ({ attempt, delayMs, error }) =>
          deliver(this.#context.onEvent, {
            type: "retry",
            label: this.label,
            attempt,
            delayMs,
            error: summariseError(this.#ours(error)),
          }),
      });
      return this.#store(grant, sentAt, started, background);
    } catch (thrown) {
      throw this.#fail(this.#ours(thrown), background);
    } finally {
      this.#controller = undefined;
      inFlight.delete(this);
      if (inFlight.size === 0 && context.inFlight === inFlight) {
        context.inFlight = undefined;
      }
    }
  }

  #ours(thrown: unknown): DualSecretAuthError {
    if (this.#context.closeSignal?.aborted) {
      return new AbortedError({ closed: true });
    }
    if (thrown instanceof DualSecretAuthError) return thrown;
    return new TokenEndpointUnavailableError("unexpected failure", undefined, {
      cause: thrown,
    });
  }

  #store(
    grant: TokenGrant,
    sentAt: number,
    started: number,
    background: boolean,
  ): CachedGrant {
    const { config } = this.#context;
    // Lifetime counts from when the request was sent, so network time never
    // makes the cached expiry later than the server's.
    const expiresAt = sentAt + grant.lifetimeMs;
    const margin = Math.min(config.refreshMarginMs, grant.lifetimeMs / 2) *
      (1 - REFRESH_JITTER * config.random());
    const cached: CachedGrant = {
      accessToken: grant.accessToken,
      expiresAt,
      refreshAt: expiresAt - margin,
      clientId: this.credential.clientId,
    };
    if (this.#retired) return cached;
    this.#context.store.setGrant(this.key, cached);
    this.#rejection = undefined;
    this.#lastError = undefined;
    this.#nextBackgroundAttemptAt = 0;
    this.#probeFailures = 0;
    if (grant.lifetimeAssumed && !this.#context.lifetimeAssumedWarned) {
      this.#context.lifetimeAssumedWarned = true;
      deliver(this.#context.onEvent, {
        type: "warning",
        code: "EXPIRES_IN_MISSING",
        label: this.label,
        message:
          `The token endpoint sent no expires_in; tokens are assumed to live ${config.defaultExpiresInSeconds} s. ` +
          `Set defaultExpiresInSeconds to the lifetime the endpoint documents.`,
      });
    }
    deliver(this.#context.onEvent, {
      type: "token.acquired",
      label: this.label,
      clientId: this.credential.clientId,
      expiresAt,
      durationMs: config.clock.now() - started,
      background,
    });
    return cached;
  }

  #fail(error: DualSecretAuthError, background: boolean): DualSecretAuthError {
    if (this.#retired) return error;
    this.#lastError = summariseError(error);
    if (error instanceof CredentialRejectedError) {
      this.#rejection = error;
      this.#nextProbeAt = this.#context.config.clock.now() +
        Math.min(
          REPROBE_MAX_DELAY_MS,
          REPROBE_INITIAL_DELAY_MS * 2 ** this.#probeFailures,
        );
      this.#probeFailures++;
      this.invalidate();
    }
    deliver(this.#context.onEvent, {
      type: "token.failed",
      label: this.label,
      error: this.#lastError,
      background,
    });
    return error;
  }
}

/**
 * The key a pool member's grant is stored under: the label for the first
 * token of a credential, `label#i` for the others.
 *
 * @param label The credential's label.
 * @param index The pool index, from 0.
 * @returns The store key.
 */
export function poolKey(label: string, index: number): string {
  return index === 0 ? label : `${label}#${index}`;
}
