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

/** The longest delay the global timers take as it is; past it they fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A timer longer than the global timers take, re-armed in steps until due. */
interface ChunkedTimer {
  /** The global timer of the current step. */
  id: unknown;
}

/**
 * The real clock: `Date.now()` and the global timers. A delay longer than
 * the global timers take (2^31 - 1 ms, about 24.8 days; past it they fire at
 * once) waits in steps, so every delay is exact.
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
  setTimeout: (callback: () => void, ms: number): TimerHandle => {
    if (!(ms > MAX_TIMER_MS)) return setTimeout(callback, ms);
    const due = Date.now() + ms;
    const timer: ChunkedTimer = { id: 0 };
    const arm = () => {
      const left = due - Date.now();
      timer.id = left > MAX_TIMER_MS
        ? setTimeout(arm, MAX_TIMER_MS)
        : setTimeout(callback, Math.max(0, left));
    };
    arm();
    return timer;
  },
  clearTimeout: (handle: TimerHandle): void => {
    clearTimeout(
      typeof handle === "object" && handle !== null && "id" in handle
        ? (handle as ChunkedTimer).id as number
        : handle as number,
    );
  },
});
