/**
 * A member's poll loop: one poll at a time, the next one a poll interval
 * after the last ended, or at once when the engine announced a change
 * (Redis pub/sub) — during a poll, right after it.
 *
 * @module
 */
import type { Clock } from "../clock.ts";

/** What the poll loop needs of its member. */
export interface PollPort {
  /** The instance's clock. */
  readonly clock: Clock;
  /** How long between the end of one poll and the next, in ms. */
  readonly pollIntervalMs: number;
  /** One poll of the store. */
  readonly poll: () => Promise<void>;
  /** Whether the member closed: no poll is scheduled then. */
  readonly closed: () => boolean;
}

/** Schedules the polls of one member. */
export class PollLoop {
  readonly #port: PollPort;
  #timer: unknown;
  #polling: Promise<void> | undefined;
  /** A change was announced during a poll: poll again right after it. */
  #pollAgain = false;

  /**
   * A loop that polls once set off with {@linkcode PollLoop.schedule}.
   *
   * @param port What the loop needs of its member.
   */
  constructor(port: PollPort) {
    this.#port = port;
  }

  /**
   * Polls after a delay, then every poll interval.
   *
   * @param ms The delay.
   */
  schedule(ms: number): void {
    if (this.#port.closed()) return;
    this.#timer = this.#port.clock.setTimeout(() => {
      this.#polling = this.#port.poll().catch(() => undefined).finally(() => {
        this.#polling = undefined;
        const again = this.#pollAgain;
        this.#pollAgain = false;
        this.schedule(again ? 0 : this.#port.pollIntervalMs);
      });
    }, ms);
  }

  /** Polls at once, or right after the poll under way. */
  soon(): void {
    if (this.#port.closed()) return;
    if (this.#polling !== undefined) {
      this.#pollAgain = true;
      return;
    }
    this.#port.clock.clearTimeout(this.#timer);
    this.schedule(0);
  }

  /** Clears the next poll's timer and waits for the poll under way (the member closed). */
  async stop(): Promise<void> {
    this.#port.clock.clearTimeout(this.#timer);
    await this.#polling;
  }
}
