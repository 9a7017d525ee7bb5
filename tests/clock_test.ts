import assert from "node:assert/strict";
import { systemClock } from "../src/clock.ts";

Deno.test("systemClock: a delay past 2^31 - 1 ms waits (in steps) instead of firing at once; clearTimeout cancels it", async () => {
  let fired = 0;
  // The global timers would fire this one at once (after ~1 ms).
  const long = systemClock.setTimeout(() => fired++, 30 * 86_400_000);
  const edge = systemClock.setTimeout(() => fired++, 2 ** 31);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(fired, 0);
  systemClock.clearTimeout(long);
  systemClock.clearTimeout(edge);
  // A short one still fires, and its handle clears as before.
  let short = 0;
  systemClock.setTimeout(() => short++, 1);
  const cancelled = systemClock.setTimeout(() => short += 10, 5);
  systemClock.clearTimeout(cancelled);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(short, 1);
});
