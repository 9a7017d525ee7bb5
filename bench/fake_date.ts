/**
 * Makes the global `Date` follow a fake clock, for libraries that read the
 * time only through `Date.now()` or `new Date()` and take no clock.
 *
 * @module
 */
import type { Clock } from "../mod.ts";

/**
 * Replaces `globalThis.Date` with a subclass whose `now()` and argument-less
 * constructor read `clock`.
 *
 * @param clock The clock to follow.
 * @returns A function that puts the real `Date` back.
 */
export function installFakeDate(clock: Clock): () => void {
  const RealDate = globalThis.Date;
  class ClockDate extends RealDate {
    constructor(...args: unknown[]) {
      super(
        ...((args.length === 0 ? [clock.now()] : args) as [
          string | number | Date,
        ]),
      );
    }
    static override now(): number {
      return clock.now();
    }
  }
  globalThis.Date = ClockDate as DateConstructor;
  return () => {
    globalThis.Date = RealDate;
  };
}
