/**
 * The one way the provider adapters (Okta, Entra ID, Cognito, Keycloak,
 * Auth0) call an admin API: the caller's authorization added per attempt,
 * the library's `send` (timeout, redirects refused, bounded body, redacted
 * quotes), the library's retry loop (`withRetry`) for throttling and
 * transient failures, one replay of a 401 with a fresh token, and a typed
 * {@linkcode ProviderApiError} for everything else. Each adapter keeps its
 * own error codes and its own reading of its provider's error envelope.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { resolveAllowedUrl } from "../allowed_url.ts";
import { AbortedError, ConfigError, DualSecretAuthError } from "../errors.ts";
import { createRedactor } from "../redact.ts";
import { headerSafe } from "../header_safe.ts";
import {
  DEFAULT_RETRY,
  parseRetryAfter,
  type RetryOptions,
  type RetryPolicy,
  type RetryVerdict,
  withRetry,
} from "../retry.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS, send, SendFailure } from "../send.ts";

/** What went wrong with an admin call, the same words for every provider. */
export type ProviderErrorKind =
  | "unauthorized"
  | "forbidden"
  | "not-found"
  | "limit"
  | "refused"
  | "rate-limited"
  | "unavailable"
  | "request-failed";

/**
 * A provider adapter's own error codes, one per {@linkcode ProviderErrorKind}
 * (each adapter module exports its constant, such as `OktaErrorCode`).
 */
export interface ProviderErrorCodes {
  /** The admin credential was refused (HTTP 401, or a bad AWS signature). */
  readonly UNAUTHORIZED: string;
  /** The admin credential lacks a permission or scope (named in the message). */
  readonly FORBIDDEN: string;
  /** No such client, application or secret. */
  readonly NOT_FOUND: string;
  /** The provider's limit of secrets per client is reached. */
  readonly LIMIT_REACHED: string;
  /** The provider (or the adapter, for it) refused the change, with its reason. */
  readonly REFUSED: string;
  /** Throttled, and the bounded retries ran out. */
  readonly RATE_LIMITED: string;
  /** 5xx, timeout or network failure, and the bounded retries ran out. */
  readonly UNAVAILABLE: string;
  /** Another refusal, or an answer the API does not document. */
  readonly REQUEST_FAILED: string;
}

const KIND_KEYS: Readonly<
  Record<ProviderErrorKind, keyof ProviderErrorCodes>
> = {
  unauthorized: "UNAUTHORIZED",
  forbidden: "FORBIDDEN",
  "not-found": "NOT_FOUND",
  limit: "LIMIT_REACHED",
  refused: "REFUSED",
  "rate-limited": "RATE_LIMITED",
  unavailable: "UNAVAILABLE",
  "request-failed": "REQUEST_FAILED",
};

/** What an admin API error knows besides its message. */
export interface ProviderFailure {
  /** What went wrong. */
  readonly kind: ProviderErrorKind;
  /** What went wrong and what to do next, in the provider's words. */
  readonly message: string;
  /** HTTP status, when the API answered. */
  readonly status?: number;
  /** The provider's own error code (Okta `E0000001`, Graph `Authorization_RequestDenied`, AWS `__type`). */
  readonly providerCode?: string;
  /** The provider's request or error id, for its support. */
  readonly requestId?: string;
  /** The permission or scope the call needs, on `forbidden`. */
  readonly permission?: string;
  /** How long the provider asked to wait, in ms, on `rate-limited`. */
  readonly retryAfterMs?: number;
}

/**
 * An admin API call of a provider adapter failed. Switch on `code` (the
 * adapter's own constant) or on `kind` (the same for every provider).
 */
export class ProviderApiError extends DualSecretAuthError {
  /** The provider's name, such as `Okta`. */
  readonly provider: string;
  /** What went wrong, the same words for every provider. */
  readonly kind: ProviderErrorKind;
  /** What was attempted, such as `add a secret to Okta app 0oa1`. */
  readonly operation: string;
  /** HTTP status, when the API answered. */
  readonly status?: number;
  /** The provider's own error code, when it sent one. */
  readonly providerCode?: string;
  /** The provider's request or error id, when it sent one. */
  readonly requestId?: string;
  /** The permission or scope the call needs, on `forbidden`. */
  readonly permission?: string;
  /** How long the provider last asked to wait, in ms, on `rate-limited`. */
  readonly retryAfterMs?: number;

  /**
   * Creates the error.
   *
   * @param code The adapter's stable code.
   * @param provider The provider's name.
   * @param operation What was attempted.
   * @param failure What went wrong.
   * @param options The underlying cause.
   */
  constructor(
    code: string,
    provider: string,
    operation: string,
    failure: ProviderFailure,
    options?: ErrorOptions,
  ) {
    const id = failure.requestId ? ` (request id ${failure.requestId})` : "";
    super(
      code,
      `${provider}: could not ${operation}: ${failure.message}${id}`,
      options,
    );
    this.provider = provider;
    this.kind = failure.kind;
    this.operation = operation;
    this.status = failure.status;
    this.providerCode = failure.providerCode;
    this.requestId = failure.requestId;
    this.permission = failure.permission;
    this.retryAfterMs = failure.retryAfterMs;
  }
}

/** One admin call, as an adapter describes it. */
export interface AdminRequest {
  /** The HTTP method. */
  readonly method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The full URL. */
  readonly url: string;
  /** What is attempted, for messages: `add a secret to Okta app 0oa1`. */
  readonly operation: string;
  /** The permission or scope the call needs, named when it is refused. */
  readonly permission: string;
  /** Headers besides authorization. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The body, already serialized. */
  readonly body?: string;
  /**
   * Whether sending it twice does no harm. When not, only throttling (which
   * the API did not act on) is retried: after a 5xx or a lost answer the
   * change may have happened.
   */
  readonly idempotent: boolean;
  /** Stops the call and its retries. */
  readonly signal?: AbortSignal;
}

/** A 2xx answer. */
export interface AdminAnswer {
  /** The HTTP status. */
  readonly status: number;
  /** The response headers. */
  readonly headers: Headers;
  /** The body parsed as JSON, or `undefined` when empty or not JSON. */
  readonly body: unknown;
}

/** A non-2xx answer, for the adapter to read. */
export interface AdminRefusal extends AdminAnswer {
  /**
   * Quotes a value the server sent: redacted, capped, or `undefined` when it
   * is not a non-empty string.
   */
  quote(value: unknown): string | undefined;
  /** The time on the transport's clock, for `Retry-After` style headers. */
  readonly now: number;
}

/** What the transport adds to one attempt. */
export interface AdminAuthorization {
  /** Headers to add, such as `authorization`. */
  readonly headers: Readonly<Record<string, string>>;
  /** Texts to redact from anything quoted (the token). */
  readonly secrets: readonly string[];
  /** Given to `invalidate` when the API answers 401. */
  readonly token?: string;
}

/** Options of {@linkcode createAdminTransport}. */
export interface AdminTransportOptions {
  /** The provider's name, for messages. */
  readonly provider: string;
  /** The adapter's error codes. */
  readonly codes: ProviderErrorCodes;
  /** Authorizes one attempt (a bearer token, or an AWS signature). */
  readonly authorize: (
    request: AdminRequest,
    signal?: AbortSignal,
  ) => Promise<AdminAuthorization>;
  /**
   * Drops a token the API refused with 401; when given, that attempt is
   * replayed once with a fresh token.
   *
   * @default undefined (a 401 is final)
   */
  readonly invalidate?: (token: string) => void;
  /** Reads a non-2xx answer in the provider's words. */
  readonly classify: (
    refusal: AdminRefusal,
    request: AdminRequest,
  ) => ProviderFailure;
  /**
   * The fetch to use.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock of waits and timeouts.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Bounds on retrying throttling and transient failures.
   *
   * @default { maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 5_000, maxElapsedMs: 60_000, maxRetryAfterMs: 30_000 }
   */
  readonly retry?: RetryOptions;
  /**
   * Timeout of one request, body included, in ms.
   *
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Numbers in [0, 1) for the backoff jitter.
   *
   * @default Math.random
   */
  readonly random?: () => number;
}

/** Sends an admin call; resolves with a 2xx answer or throws a {@linkcode ProviderApiError}. */
export type AdminTransport = (request: AdminRequest) => Promise<AdminAnswer>;

/** What every adapter's options share: I/O and bounds. */
export interface AdminIoOptions {
  /**
   * The fetch to use.
   *
   * @default globalThis.fetch
   */
  readonly fetch?: typeof fetch;
  /**
   * The clock of waits, timeouts and expiry times.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Bounds on retrying throttling, 5xx and network failures.
   *
   * @default { maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 5_000, maxElapsedMs: 60_000, maxRetryAfterMs: 30_000 }
   */
  readonly retry?: RetryOptions;
  /**
   * Timeout of one request, body included, in ms.
   *
   * @default 10_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Numbers in [0, 1) for the backoff jitter.
   *
   * @default Math.random
   */
  readonly random?: () => number;
}

/**
 * Creates the send function of one adapter.
 * Internal: each adapter in `src/providers/` builds its calls on it;
 * `tests/providers/*_test.ts` test it through them.
 *
 * @param options The provider, its codes, authorization, classifier and I/O.
 * @returns The send function.
 */
export function createAdminTransport(
  options: AdminTransportOptions,
): AdminTransport {
  const fetchFn = options.fetch ??
    ((input: RequestInfo | URL, init?: RequestInit) =>
      globalThis.fetch(input, init));
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const policy: RetryPolicy = {
    ...DEFAULT_RETRY,
    maxElapsedMs: 60_000,
    ...options.retry,
  };

  const fail = (
    request: AdminRequest,
    failure: ProviderFailure,
    cause?: unknown,
  ) =>
    new ProviderApiError(
      options.codes[KIND_KEYS[failure.kind]],
      options.provider,
      request.operation,
      request.idempotent || !mayHaveActed(failure) ? failure : {
        ...failure,
        // "Retry" alone would add a second secret nobody holds.
        message: `${failure.message} The change may have been made anyway: ` +
          `read the client's secrets before sending it again.`,
      },
      cause === undefined ? undefined : { cause },
    );

  async function attempt(
    request: AdminRequest,
    replayed: boolean,
  ): Promise<AdminAnswer> {
    const auth = await options.authorize(request, request.signal);
    let sent;
    try {
      sent = await send(request.url, {
        method: request.method,
        headers: {
          accept: "application/json",
          ...request.headers,
          ...auth.headers,
        },
        ...(request.body === undefined ? {} : { body: request.body }),
      }, {
        fetch: fetchFn,
        clock,
        timeoutMs,
        signal: request.signal,
        redact: createRedactor(() => auth.secrets),
      });
    } catch (error) {
      if (!(error instanceof SendFailure)) throw error;
      if (error.kind === "aborted") {
        throw new AbortedError({ cause: error.cause });
      }
      throw fail(request, {
        kind: error.kind === "too-large" ? "request-failed" : "unavailable",
        status: error.status,
        message: error.kind === "too-large"
          ? `${error.message}; the API should never send that much`
          : `the API is unavailable (${error.message}); check the network and retry`,
      }, error.cause ?? error);
    }
    const { response, text } = sent;
    const body = parseJson(text);
    if (response.ok) {
      return { status: response.status, headers: response.headers, body };
    }
    if (
      response.status === 401 && !replayed && options.invalidate &&
      auth.token !== undefined
    ) {
      options.invalidate(auth.token);
      return attempt(request, true);
    }
    throw fail(
      request,
      options.classify({
        status: response.status,
        headers: response.headers,
        body,
        quote: sent.quote,
        now: clock.now(),
      }, request),
    );
  }

  return async (request) => {
    try {
      return await withRetry(() => attempt(request, false), {
        ...policy,
        clock,
        random: options.random,
        signal: request.signal,
        isRetriable: (error) => verdict(error, request, policy),
      });
    } catch (error) {
      if (error instanceof DualSecretAuthError) throw error;
      if (request.signal?.aborted) throw new AbortedError({ cause: error });
      throw error;
    }
  };
}

/**
 * Throttling waits as asked (giving up at once when asked for longer than
 * `maxRetryAfterMs`: a retry sooner would only be throttled again);
 * transient failures back off, and only on calls safe to send twice.
 */
function verdict(
  error: unknown,
  request: AdminRequest,
  policy: RetryPolicy,
): RetryVerdict {
  if (!(error instanceof ProviderApiError)) return false;
  if (error.kind === "rate-limited") {
    if (error.retryAfterMs === undefined) return true;
    return error.retryAfterMs <= policy.maxRetryAfterMs && error.retryAfterMs;
  }
  return error.kind === "unavailable" && request.idempotent;
}

/**
 * Whether the API may have acted on a call that failed this way: a 5xx, a
 * lost answer, or an answer too large to read (a refusal or throttling
 * means it did not).
 */
function mayHaveActed(failure: ProviderFailure): boolean {
  return failure.kind === "unavailable" ||
    (failure.kind === "request-failed" && failure.status !== undefined &&
      failure.status < 300);
}

function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The kind a status means when the provider's body says nothing more.
 *
 * @param status An HTTP status of 400 or more.
 * @returns The kind.
 */
export function kindOfStatus(status: number): ProviderErrorKind {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not-found";
  if (status === 429) return "rate-limited";
  if (status === 408 || status >= 500) return "unavailable";
  return "request-failed";
}

/**
 * The wait a throttled answer asks for: `Retry-After` (seconds or a date),
 * else a reset time in epoch seconds (Okta's `X-Rate-Limit-Reset`, Auth0's
 * `x-ratelimit-reset`).
 *
 * @param headers The answer's headers.
 * @param now The time, in ms since the epoch.
 * @returns The wait in ms, or `undefined` when the answer does not say.
 */
export function throttleWait(
  headers: Headers,
  now: number,
): number | undefined {
  const retryAfter = parseRetryAfter(headers.get("retry-after"), now);
  if (retryAfter !== undefined) return retryAfter;
  const reset = headers.get("x-rate-limit-reset") ??
    headers.get("x-ratelimit-reset");
  if (reset !== null && /^\d{1,12}$/.test(reset.trim())) {
    return Math.max(0, Number(reset) * 1000 - now);
  }
  return undefined;
}

/**
 * The origin and path of an admin API base URL, without a trailing slash.
 *
 * @param option The option's name, for the error.
 * @param value The URL as given.
 * @returns The base URL.
 * @throws {import("../errors.ts").ConfigError} When it is not https (or http on loopback).
 */
export function baseUrl(option: string, value: unknown): string {
  const url = resolveAllowedUrl(option, value);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/**
 * A bearer-token authorization from a token getter.
 *
 * @param getAccessToken Gives the admin credential's token.
 * @param scheme The authorization scheme.
 * @returns The `authorize` of {@linkcode AdminTransportOptions}.
 * @throws {import("../errors.ts").ConfigError} When `getAccessToken` is not a function.
 */
export function bearer(
  getAccessToken: (options?: { signal?: AbortSignal }) => Promise<string>,
  scheme = "Bearer",
): AdminTransportOptions["authorize"] {
  if (typeof getAccessToken !== "function") {
    throw new ConfigError("getAccessToken", "must be a function");
  }
  return async (_request, signal) => {
    const token = await getAccessToken(signal ? { signal } : undefined);
    if (typeof token !== "string" || token === "") {
      throw new ConfigError(
        "getAccessToken",
        "must resolve to a non-empty string",
      );
    }
    headerSafe("getAccessToken", token);
    return {
      headers: { authorization: `${scheme} ${token}` },
      secrets: [token],
      token,
    };
  };
}

/**
 * Runs an admin call whose target may be gone already, and resolves
 * `undefined` when the provider answers that it is: a retried delete whose
 * first attempt went through finds nothing, which is done (Okta's and
 * Cognito's secret deletes), and Keycloak's rotated secret read when there
 * is none. Every other failure is thrown.
 *
 * @param call The admin call.
 * @returns Its result, or `undefined` when the provider answered not-found.
 * @throws {ProviderApiError} Any failure but not-found.
 *
 * @example A delete that finds nothing is done
 * ```ts
 * import { ProviderApiError, unlessGone } from "./admin_http.ts";
 *
 * const gone = await unlessGone(() =>
 *   Promise.reject(
 *     new ProviderApiError("X_NOT_FOUND", "X", "delete secret s1", {
 *       kind: "not-found",
 *       message: "no such secret",
 *     }),
 *   )
 * );
 * if (gone !== undefined) throw new Error();
 * ```
 */
export async function unlessGone<T>(
  call: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ProviderApiError && error.kind === "not-found") {
      return undefined;
    }
    throw error;
  }
}

/** Whether a value is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A string field of a JSON object, or `undefined`.
 *
 * @param value The object (or anything).
 * @param field The field's name.
 * @returns The string, when it is a non-empty one.
 */
export function stringField(value: unknown, field: string): string | undefined {
  if (!isObject(value)) return undefined;
  const text = value[field];
  return typeof text === "string" && text !== "" ? text : undefined;
}

/**
 * Checks an id an adapter puts in a URL or a body.
 *
 * @param value The id as given.
 * @param option Its name, for the error.
 * @returns The id.
 * @throws {import("../errors.ts").ConfigError} When it is not a non-empty string, or is `.` or `..`.
 */
export function requireId(value: unknown, option: string): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new ConfigError(option, "must be a non-empty string");
  }
  if (isDotSegment(value)) {
    throw new ConfigError(
      option,
      `must not be "${value}": in a URL path it would address another resource`,
    );
  }
  return value;
}

/**
 * Whether a text is `.` or `..`, which `encodeURIComponent` leaves as they
 * are and a URL parser then resolves, so an id put in a path as one would
 * address its parent (`/clients/../rotate-secret` is `/rotate-secret`).
 *
 * @param text The text.
 * @returns True for `.` and `..`.
 */
export function isDotSegment(text: string): boolean {
  return text === "." || text === "..";
}

/**
 * Checks a duration option.
 *
 * @param option Its name, for the error.
 * @param value The value as given.
 * @returns The value.
 * @throws {import("../errors.ts").ConfigError} When it is not a finite number, 0 or more.
 */
export function nonNegativeMs(option: string, value: unknown): number {
  if (typeof value !== "number" || !(value >= 0 && Number.isFinite(value))) {
    throw new ConfigError(option, "must be a finite number of ms, 0 or more");
  }
  return value;
}

/**
 * The error of a 2xx answer that lacks what the provider's API documents.
 *
 * @param codes The adapter's codes.
 * @param provider The provider's name.
 * @param operation What was attempted.
 * @param what What the answer lacks (and what to do about a change made).
 * @returns The error.
 */
export function undocumentedAnswer(
  codes: ProviderErrorCodes,
  provider: string,
  operation: string,
  what: string,
): ProviderApiError {
  return new ProviderApiError(codes.REQUEST_FAILED, provider, operation, {
    kind: "request-failed",
    message:
      `the answer lacks ${what}, which ${provider}'s API documents; check the API URL`,
  });
}
