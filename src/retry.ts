/**
 * Retrying: one loop ({@linkcode withRetry}) driven by a classifier,
 * exponential backoff with full jitter, `Retry-After` parsing, and an
 * abortable delay on an injected clock.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";

/**
 * How transient failures of the token endpoint are retried (429, 408, 5xx,
 * timeouts and network failures): exponential backoff with full jitter,
 * honouring `Retry-After`.
 *
 * @example A 429's `Retry-After` is honoured, up to `maxRetryAfterMs`
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "blue-id", secret: "blue-secret" }],
 * });
 * emulator.injectTokenFaults({ kind: "status", status: 429, retryAfter: "30" });
 * let waited = -1;
 * await using auth = createDualSecretAuth({
 *   credentials: [{ label: "blue", clientId: "blue-id", clientSecret: "blue-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 *   retry: { maxRetryAfterMs: 50 },
 *   onEvent: (event) => void (event.type === "retry" && (waited = event.delayMs)),
 * });
 * await auth.getAccessToken();
 * if (waited !== 50) throw new Error(`waited ${waited} ms`);
 * ```
 */
export interface RetryOptions {
  /**
   * Most attempts per token request, the first included.
   *
   * @default 6
   */
  readonly maxAttempts?: number;
  /**
   * The first backoff cap in ms; it doubles per attempt.
   *
   * @default 200
   */
  readonly baseDelayMs?: number;
  /**
   * The largest backoff cap in ms.
   *
   * @default 5_000
   */
  readonly maxDelayMs?: number;
  /**
   * Give up when the next wait would end later than this after the first
   * attempt.
   *
   * @default 30_000
   */
  readonly maxElapsedMs?: number;
  /**
   * The longest `Retry-After` honoured, in ms; longer ones are capped.
   *
   * @default 30_000
   */
  readonly maxRetryAfterMs?: number;
}

/** {@linkcode RetryOptions} with every field set. */
export type RetryPolicy = Required<RetryOptions>;

/** The defaults of {@linkcode RetryOptions}. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 6,
  baseDelayMs: 200,
  maxDelayMs: 5_000,
  maxElapsedMs: 30_000,
  maxRetryAfterMs: 30_000,
});

/**
 * The wait before retry number `attempt` (1 for the first retry): a uniformly
 * random time between 0 and `min(maxDelayMs, baseDelayMs * 2^(attempt-1))`
 * ("full jitter"), which spreads a fleet's retries instead of bunching them.
 *
 * @param attempt The retry number, from 1.
 * @param policy The base and largest delay.
 * @param random A source of numbers in [0, 1); `Math.random` by default.
 * @returns The delay in ms.
 *
 * @example Two 503s are retried after short, jittered waits
 * ```ts
 * import { createDualSecretAuth } from "@rotating/dual-secret-auth";
 * import { startGenesysEmulator } from "@rotating/dual-secret-auth/testing";
 *
 * await using emulator = startGenesysEmulator({
 *   clients: [{ clientId: "blue-id", secret: "blue-secret" }],
 * });
 * emulator.injectTokenFaults({ kind: "status", status: 503 }, 2);
 * const waits: number[] = [];
 * await using auth = createDualSecretAuth({
 *   credentials: [{ label: "blue", clientId: "blue-id", clientSecret: "blue-secret" }],
 *   tokenUrl: emulator.tokenUrl,
 *   retry: { baseDelayMs: 5, maxDelayMs: 10 },
 *   onEvent: (event) => void (event.type === "retry" && waits.push(event.delayMs)),
 * });
 * await auth.getAccessToken();
 * if (waits.length !== 2 || waits.some((ms) => ms > 10)) throw new Error(`${waits}`);
 * ```
 */
export function backoffDelay(
  attempt: number,
  policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">,
  random: () => number = Math.random,
): number {
  const cap = Math.min(
    policy.maxDelayMs,
    policy.baseDelayMs * 2 ** Math.max(0, attempt - 1),
  );
  return Math.floor(random() * cap);
}

/**
 * Parses an HTTP `Retry-After` value: delay seconds (`"42"`) or an HTTP date.
 * Internal: the example on {@linkcode RetryOptions} shows it at work;
 * `tests/retry_test.ts` and `tests/property/retry_after_property_test.ts` test it.
 *
 * @param value The header value, or null when absent.
 * @param now The current time in ms since the epoch (for dates).
 * @returns The wait in ms (0 for a date in the past), or `undefined` when the
 *   value is absent or not valid.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  const at = parseHttpDate(text);
  return at === undefined ? undefined : Math.max(0, at - now);
}

/** The three HTTP-date forms of RFC 9110 §5.6.7; all are GMT. */
const HTTP_DATE_FORMS: readonly RegExp[] = [
  /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, // IMF-fixdate
  /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/, // RFC 850
  /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/, // asctime
];

/**
 * Parses an HTTP date in any of its three forms. Plain `Date.parse` would
 * accept far looser text, such as "1", as a date, and would read asctime's
 * zone-less form as local time.
 */
function parseHttpDate(text: string): number | undefined {
  const form = HTTP_DATE_FORMS.findIndex((pattern) => pattern.test(text));
  if (form === -1) return undefined;
  const at = Date.parse(form === 2 ? `${text} GMT` : text);
  return Number.isFinite(at) ? at : undefined;
}

/**
 * Waits `ms` on `clock`, or rejects with the signal's reason as soon as
 * `signal` aborts. The timer is always cleared, so nothing leaks.
 * Internal: `tests/retry_test.ts` tests it; users meet it as the waits of
 * {@linkcode RetryOptions}.
 *
 * @param ms How long to wait.
 * @param clock The clock whose timers to use.
 * @param signal Aborts the wait.
 * @returns A promise that resolves after the wait.
 */
export function delay(
  ms: number,
  clock: Clock,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal!.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * What {@linkcode WithRetryOptions.isRetriable} says of a failure: `false` to
 * give up and throw it, `true` to retry after the backoff, or a number of ms
 * to wait before retrying (a server's `Retry-After`, capped at
 * `maxRetryAfterMs`).
 */
export type RetryVerdict = boolean | number;

/** One wait of {@linkcode withRetry}, as given to `onRetry`. */
export interface RetryWait {
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** How long the loop waits before the next attempt, in ms. */
  readonly delayMs: number;
  /** What the failed attempt threw. */
  readonly error: unknown;
}

/** Options of {@linkcode withRetry}: the bounds of {@linkcode RetryOptions} and the loop's I/O. */
export interface WithRetryOptions extends RetryOptions {
  /**
   * Classifies a failure: give up (`false`), back off (`true`), or wait a
   * given number of ms. Not called once `maxAttempts` is reached.
   *
   * @default () => true
   */
  readonly isRetriable?: (error: unknown, attempt: number) => RetryVerdict;
  /**
   * The clock for waits and elapsed time.
   *
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * Stops the loop: before an attempt and during a wait, `withRetry` rejects
   * with `signal.reason`. An attempt in flight sees the signal only if `fn`
   * passes it on.
   */
  readonly signal?: AbortSignal;
  /**
   * Numbers in [0, 1) for the backoff jitter.
   *
   * @default Math.random
   */
  readonly random?: () => number;
  /** Called before each wait, such as to emit an event. */
  readonly onRetry?: (wait: RetryWait) => void;
}

/**
 * Calls `fn` until it resolves, retrying the failures `isRetriable` accepts,
 * waiting the backoff of {@linkcode backoffDelay} or the wait it names. Gives
 * up with the last error, unchanged, when `isRetriable` says so, after
 * `maxAttempts`, or when the next wait would end more than `maxElapsedMs`
 * after the first attempt started. One loop, modelled on denoland/std
 * `async/retry.ts`, with an injected clock and signal.
 * Internal: users bound it with {@linkcode RetryOptions} (see the examples on
 * {@linkcode backoffDelay} and {@linkcode parseRetryAfter});
 * `tests/retry_test.ts` and `tests/property/with_retry_property_test.ts` test it.
 *
 * @typeParam T What `fn` resolves to.
 * @param fn One attempt; gets the attempt number, from 1.
 * @param options Bounds, classifier, clock and signal.
 * @returns What the first successful attempt resolved to.
 * @throws The last attempt's error, or `signal.reason` once the signal aborts.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: WithRetryOptions = {},
): Promise<T> {
  const policy: RetryPolicy = {
    maxAttempts: options.maxAttempts ?? DEFAULT_RETRY.maxAttempts,
    baseDelayMs: options.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
    maxDelayMs: options.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    maxElapsedMs: options.maxElapsedMs ?? DEFAULT_RETRY.maxElapsedMs,
    maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULT_RETRY.maxRetryAfterMs,
  };
  const clock = options.clock ?? systemClock;
  const { signal } = options;
  const started = clock.now();
  for (let attempt = 1;; attempt++) {
    if (signal?.aborted) throw signal.reason;
    try {
      return await fn(attempt);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (attempt >= policy.maxAttempts) throw error;
      const verdict = options.isRetriable?.(error, attempt) ?? true;
      if (verdict === false) throw error;
      const delayMs = verdict === true
        ? backoffDelay(attempt, policy, options.random)
        : Math.min(Math.max(0, verdict), policy.maxRetryAfterMs);
      if (clock.now() + delayMs - started > policy.maxElapsedMs) throw error;
      options.onRetry?.({ attempt, delayMs, error });
      await delay(delayMs, clock, signal);
    }
  }
}
