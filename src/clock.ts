/**
 * Time as the library sees it, injectable so tests can control it.
 *
 * @module
 */

/** An opaque handle returned by {@linkcode Clock.setTimeout}. */
export type TimerHandle = unknown;

/**
 * The source of time and timers. The library never reads `Date.now()` or calls
 * `setTimeout` directly, so a test can pass a fake clock and move time by hand.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@linkcode Clock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): TimerHandle;
  /** Cancels a timer created by {@linkcode Clock.setTimeout}; unknown handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock: `Date.now()` and the global timers.
 *
 * @example Read the time
 * ```ts
 * import { systemClock } from "@rotating/dual-secret-auth";
 * const t = systemClock.now();
 * if (!(t > 0)) throw new Error("unexpected");
 * ```
 */
export const systemClock: Clock = Object.freeze({
  now: (): number => Date.now(),
  setTimeout: (callback: () => void, ms: number): TimerHandle =>
    setTimeout(callback, ms),
  clearTimeout: (handle: TimerHandle): void => clearTimeout(handle as number),
});
