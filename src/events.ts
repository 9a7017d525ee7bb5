/**
 * Events the library emits for observability. They carry labels, client ids,
 * times and error codes, never a secret or a token.
 *
 * @module
 */

/** A short, secret-free description of an error, as carried by events and status. */
export interface ErrorSummary {
  /** The error's stable code (see `ErrorCode`), or `UNKNOWN`. */
  readonly code: string;
  /** The error's message. */
  readonly message: string;
  /** The OAuth error code, when the token endpoint sent one. */
  readonly oauthError?: string;
  /** The HTTP status, when there was a response. */
  readonly status?: number;
}

/** A token was obtained from the token endpoint. */
export interface TokenAcquiredEvent {
  /** Discriminant. */
  readonly type: "token.acquired";
  /** The credential's label. */
  readonly label: string;
  /** The credential's client id. */
  readonly clientId: string;
  /** When the token expires, in ms since the epoch. */
  readonly expiresAt: number;
  /** How long the request took, retries included, in ms. */
  readonly durationMs: number;
  /** Whether a refresh ahead of expiry got it while callers were served. */
  readonly background: boolean;
}

/** A token request failed for good (after retries). */
export interface TokenFailedEvent {
  /** Discriminant. */
  readonly type: "token.failed";
  /** The credential's label. */
  readonly label: string;
  /** What went wrong. */
  readonly error: ErrorSummary;
  /** Whether a refresh ahead of expiry failed while a valid token was still served. */
  readonly background: boolean;
}

/** A token request failed transiently and will be retried. */
export interface RetryEvent {
  /** Discriminant. */
  readonly type: "retry";
  /** The credential's label. */
  readonly label: string;
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** How long until the next attempt, in ms. */
  readonly delayMs: number;
  /** Why it failed. */
  readonly error: ErrorSummary;
}

/**
 * No credential could serve, so a rejected one is probed again (with backoff
 * from 1 s up to 5 min); its outcome follows as `token.acquired` or
 * `token.failed`.
 */
export interface ReprobeEvent {
  /** Discriminant. */
  readonly type: "reprobe";
  /** The credential probed. */
  readonly label: string;
  /** The probe's number since the credential was first rejected, from 1. */
  readonly attempt: number;
}

/** An API answered `auth.fetch` with 429; the call waits, then sends again. */
export interface ApiRateLimitedEvent {
  /** Discriminant. */
  readonly type: "api.rate_limited";
  /** The request's method. */
  readonly method: string;
  /** The request's origin and path (no query, which may hold secrets). */
  readonly url: string;
  /** The attempt that was answered 429, from 1. */
  readonly attempt: number;
  /** How long the call waits before sending again, in ms. */
  readonly delayMs: number;
}

/**
 * `auth.fetch` got a 401 saying its token is stale but sent no replay and
 * requested no token: the token was itself fetched by a replay moments ago,
 * or its replays ran out (see `authorizedFetch`). The 401 is returned.
 */
export interface ApiReplaySkippedEvent {
  /** Discriminant. */
  readonly type: "api.replay_skipped";
  /** The request's method. */
  readonly method: string;
  /** The request's origin and path (no query, which may hold secrets). */
  readonly url: string;
  /**
   * `recent`: the token came from a replay less than 10 s ago, or a replay
   * dropped another token less than 10 s ago; `limit`: 3 replays in a row
   * led to it.
   */
  readonly reason: "recent" | "limit";
  /** How many replays in a row led to the token. */
  readonly replays: number;
}

/** The active credential was rejected and another took over. */
export interface FailoverEvent {
  /** Discriminant. */
  readonly type: "failover";
  /** The rejected credential. */
  readonly from: string;
  /** The credential now active. */
  readonly to: string;
  /** The rejection. */
  readonly error: ErrorSummary;
}

/** `rotate()` switched the active credential after verifying it. */
export interface RotatedEvent {
  /** Discriminant. */
  readonly type: "rotated";
  /** The credential that was active. */
  readonly from: string;
  /** The credential now active. */
  readonly to: string;
}

/** Something the operator should know that did not stop the library. */
export interface WarningEvent {
  /** Discriminant. */
  readonly type: "warning";
  /**
   * A stable code: `WHITESPACE_TRIMMED`, `ACTIVE_REMOVED`, `ACTIVE_UNKNOWN`
   * (the active store named no configured credential and was repaired),
   * `CLOCK_WENT_BACK`, `EXPIRES_IN_MISSING` (the token endpoint sent no
   * `expires_in`; `defaultExpiresInSeconds` is assumed; once per instance).
   */
  readonly code: string;
  /** What happened and what to do. */
  readonly message: string;
  /** The credential concerned, if any. */
  readonly label?: string;
}

/** Every event {@linkcode AuthEventListener} can receive. */
export type AuthEvent =
  | TokenAcquiredEvent
  | TokenFailedEvent
  | RetryEvent
  | ReprobeEvent
  | ApiRateLimitedEvent
  | ApiReplaySkippedEvent
  | FailoverEvent
  | RotatedEvent
  | WarningEvent;

/**
 * Receives events. It should not throw; if it throws, or is an async function
 * whose promise rejects, the error is dropped so authentication goes on (and no
 * rejection is left unhandled).
 */
export type AuthEventListener = (event: AuthEvent) => void;

/**
 * Summarises an error for an event or status: code, message and, where
 * present, OAuth error and HTTP status. Messages are the library's own and
 * hold no secrets.
 *
 * @param error What was thrown.
 * @returns The summary.
 */
export function summariseError(error: unknown): ErrorSummary {
  if (!(error instanceof Error)) {
    return { code: "UNKNOWN", message: "non-error value thrown" };
  }
  const fields = error as Error & {
    code?: unknown;
    oauthError?: unknown;
    status?: unknown;
  };
  return {
    code: typeof fields.code === "string" ? fields.code : "UNKNOWN",
    message: error.message,
    ...(typeof fields.oauthError === "string"
      ? { oauthError: fields.oauthError }
      : {}),
    ...(typeof fields.status === "number" ? { status: fields.status } : {}),
  };
}

/**
 * Hands an event to a listener. A listener's bug, thrown or rejected, must
 * not break authentication nor crash the process with an unhandled
 * rejection: it is dropped. The one path every event takes.
 *
 * @param listener The listener, if any.
 * @param event The event.
 */
export function deliver<E>(
  listener: ((event: E) => unknown) | undefined,
  event: E,
): void {
  try {
    const result: unknown = listener?.(event);
    if (result instanceof Promise) result.catch(() => undefined);
  } catch {
    // Dropped, as above.
  }
}
