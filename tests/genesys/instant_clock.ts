import type { Clock, TimerHandle } from "../../src/clock.ts";

/** Use as `requestTimeoutMs` so request timeouts never fire on an {@linkcode InstantClock}. */
export const NEVER_FIRES = 999_999;

/**
 * A clock for retry tests: waits shorter than `neverFiresFrom` pass at once
 * (time jumps forward and the wait is recorded); longer ones, such as request
 * timeouts, never fire.
 */
export class InstantClock implements Clock {
  readonly waits: number[] = [];
  #now = Date.UTC(2026, 0, 1);
  #nextId = 1;
  readonly #neverFiresFrom: number;

  constructor(neverFiresFrom = NEVER_FIRES) {
    this.#neverFiresFrom = neverFiresFrom;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    if (ms >= this.#neverFiresFrom) return id;
    this.waits.push(ms);
    this.#now += ms;
    queueMicrotask(callback);
    return id;
  }

  clearTimeout(_handle: TimerHandle): void {}
}
