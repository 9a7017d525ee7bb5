/**
 * A clock for tests: time stands still until you move it.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock.ts";

interface PendingTimer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/**
 * A {@linkcode Clock} whose time moves only when {@linkcode FakeClock.advance}
 * or {@linkcode FakeClock.set} is called. Timers fire in order of their due time
 * while time moves past them, with pending promise callbacks settled in between.
 *
 * @example Move time and fire a timer
 * ```ts
 * import { FakeClock } from "@rotating/dual-secret-auth/testing";
 * const clock = new FakeClock(0);
 * let fired = false;
 * clock.setTimeout(() => fired = true, 1_000);
 * await clock.advance(1_000);
 * if (!fired || clock.now() !== 1_000) throw new Error("unexpected");
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #timers: PendingTimer[] = [];

  /**
   * Creates a clock standing at `start`.
   *
   * @param start The starting time in milliseconds since the epoch;
   *   2026-01-01T00:00:00Z if left out.
   */
  constructor(start?: number) {
    this.#now = start ?? Date.UTC(2026, 0, 1);
  }

  /** The fake time in milliseconds since the epoch. */
  now(): number {
    return this.#now;
  }

  /** Schedules `callback` at fake time `now() + ms`. */
  setTimeout(callback: () => void, ms: number): TimerHandle {
    const id = this.#nextId++;
    this.#timers.push({ id, at: this.#now + Math.max(0, ms), callback });
    this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
    return id;
  }

  /** Cancels a pending timer. */
  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }

  /** How many timers are waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way.
   * Promise callbacks are settled after each timer, so code awaiting a delay
   * runs before the next timer fires.
   *
   * @param ms How far to move, in milliseconds (0 or more).
   * @returns A promise that resolves once time has moved and due timers ran.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError("advance() takes 0 or more ms");
    const target = this.#now + ms;
    await settle();
    while (this.#timers.length > 0 && this.#timers[0].at <= target) {
      const timer = this.#timers.shift()!;
      this.#now = Math.max(this.#now, timer.at);
      timer.callback();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /**
   * Jumps the clock to `time` without firing timers on the way: a wall-clock
   * jump (NTP correction, suspended VM), forward or backward.
   *
   * @param time The new time in milliseconds since the epoch.
   */
  set(time: number): void {
    this.#now = time;
  }

  /**
   * Runs timers until none is left or `limitMs` of fake time has passed.
   *
   * @param limitMs The most fake time to let pass; one day when left out.
   * @returns A promise that resolves when done.
   */
  async runAll(limitMs?: number): Promise<void> {
    const deadline = this.#now + (limitMs ?? 24 * 60 * 60 * 1000);
    await settle();
    while (this.#timers.length > 0 && this.#timers[0].at <= deadline) {
      await this.advance(Math.max(0, this.#timers[0].at - this.#now));
    }
  }
}

async function settle(): Promise<void> {
  // A macrotask turn lets chains of promise callbacks (including those behind
  // real I/O that already completed) run before time moves again.
  for (let i = 0; i < 3; i++) {
    await new Promise<void>((resolve) => queueMicrotask(resolve));
  }
  await new Promise<void>((resolve) => setTimeout(resolve, 0));
}
