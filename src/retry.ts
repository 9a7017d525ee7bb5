/**
 * Retrying: one loop ({@linkcode withRetry}) driven by a classifier,
 * exponential backoff with full jitter, `Retry-After` parsing, and an
 * abortable delay on an injected clock.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";

/** How transient failures of the token endpoint are retried. */
export interface RetryOptions {
  /** Most attempts per token request, the first included. Default 6. */
  readonly maxAttempts?: number;
  /** The first backoff cap in ms; it doubles per attempt. Default 200. */
  readonly baseDelayMs?: number;
  /** The largest backoff cap in ms. Default 5,000. */
  readonly maxDelayMs?: number;
  /** Give up when the next wait would end later than this after the first attempt. Default 30,000. */
  readonly maxElapsedMs?: number;
  /** The longest `Retry-After` honoured, in ms; longer ones are capped. Default 30,000. */
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
 * @example
 * ```ts
 * import { backoffDelay } from "./retry.ts";
 * const ms = backoffDelay(3, { baseDelayMs: 100, maxDelayMs: 1_000 }, () => 0.5);
 * if (ms !== 200) throw new Error(String(ms));
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
 *
 * @param value The header value, or null when absent.
 * @param now The current time in ms since the epoch (for dates).
 * @returns The wait in ms (0 for a date in the past), or `undefined` when the
 *   value is absent or not valid.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from "./retry.ts";
 * if (parseRetryAfter("3", 0) !== 3_000) throw new Error();
 * const now = Date.UTC(2026, 0, 1);
 * if (parseRetryAfter(new Date(now + 5_000).toUTCString(), now) !== 5_000) throw new Error();
 * if (parseRetryAfter("soon", now) !== undefined) throw new Error();
 * ```
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
 *
 * @param ms How long to wait.
 * @param clock The clock whose timers to use.
 * @param signal Aborts the wait.
 * @returns A promise that resolves after the wait.
 *
 * @example
 * ```ts
 * import { delay } from "./retry.ts";
 * import { systemClock } from "./clock.ts";
 * await delay(1, systemClock);
 * ```
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
 *
 * @typeParam T What `fn` resolves to.
 * @param fn One attempt; gets the attempt number, from 1.
 * @param options Bounds, classifier, clock and signal.
 * @returns What the first successful attempt resolved to.
 * @throws The last attempt's error, or `signal.reason` once the signal aborts.
 *
 * @example Retry a flaky call twice, waiting 1 ms each time
 * ```ts
 * import { withRetry } from "./retry.ts";
 * let calls = 0;
 * const value = await withRetry(() => {
 *   calls++;
 *   if (calls < 3) throw new Error("flaky");
 *   return Promise.resolve("ok");
 * }, { isRetriable: () => 1 });
 * if (value !== "ok" || calls !== 3) throw new Error(`${value} after ${calls}`);
 * ```
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
