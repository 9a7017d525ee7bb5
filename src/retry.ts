/**
 * Retry timing: exponential backoff with full jitter, `Retry-After` parsing,
 * and an abortable delay on an injected clock.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

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
