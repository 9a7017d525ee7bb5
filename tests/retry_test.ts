import assert from "node:assert/strict";
import {
  backoffDelay,
  DEFAULT_RETRY,
  delay,
  parseRetryAfter,
} from "../src/retry.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

Deno.test("backoffDelay", async (t) => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1_000 };
  const almostOne = 1 - Number.EPSILON;

  await t.step("the cap starts at the base and doubles per retry", () => {
    const caps = [1, 2, 3, 4].map((attempt) =>
      backoffDelay(attempt, policy, () => almostOne) + 1
    );
    assert.deepEqual(caps, [100, 200, 400, 800]);
  });

  await t.step("the cap stops at maxDelayMs", () => {
    for (const attempt of [5, 6, 10, 60]) {
      assert.equal(backoffDelay(attempt, policy, () => almostOne), 999);
    }
  });

  await t.step("full jitter: from 0 up to, not including, the cap", () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const cap = Math.min(1_000, 100 * 2 ** (attempt - 1));
      assert.equal(backoffDelay(attempt, policy, () => 0), 0);
      for (const r of [0.1, 0.5, 0.9, almostOne]) {
        const ms = backoffDelay(attempt, policy, () => r);
        assert.ok(ms >= 0 && ms < cap, `${attempt}: ${ms} of ${cap}`);
        assert.equal(ms, Math.floor(r * cap));
      }
    }
  });

  await t.step("Math.random by default stays in bounds", () => {
    for (let i = 0; i < 200; i++) {
      const ms = backoffDelay(3, policy);
      assert.ok(ms >= 0 && ms < 400, String(ms));
    }
  });

  await t.step("defaults are sane", () => {
    assert.ok(DEFAULT_RETRY.maxAttempts >= 1);
    assert.ok(DEFAULT_RETRY.baseDelayMs <= DEFAULT_RETRY.maxDelayMs);
    assert.ok(Object.isFrozen(DEFAULT_RETRY));
  });
});

Deno.test("parseRetryAfter", async (t) => {
  await t.step("delay seconds", () => {
    assert.equal(parseRetryAfter("42", NOW), 42_000);
    assert.equal(parseRetryAfter(" 7 ", NOW), 7_000);
    assert.equal(parseRetryAfter("0", NOW), 0);
  });

  await t.step("an HTTP date in the future", () => {
    const date = new Date(NOW + 90_000).toUTCString();
    assert.equal(parseRetryAfter(date, NOW), 90_000);
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 12:00:05 GMT", NOW), 5_000);
  });

  await t.step("an HTTP date in the past is 0", () => {
    assert.equal(
      parseRetryAfter(new Date(NOW - 60_000).toUTCString(), NOW),
      0,
    );
  });

  await t.step("absent or garbage is undefined", () => {
    for (
      const value of [
        null,
        undefined,
        "",
        "soon",
        "-1",
        "1.5",
        "1e3",
        "0x10",
        "12 seconds",
        "99999999999999999999",
        "2026-01-01T12:00:05Z",
        "Thu, 01 Jan 2026 12:00:05",
      ]
    ) {
      assert.equal(parseRetryAfter(value, NOW), undefined, String(value));
    }
  });
});

Deno.test("delay", async (t) => {
  await t.step("resolves after ms on the clock, not before", async () => {
    const clock = new FakeClock(0);
    let done = false;
    const waiting = delay(500, clock).then(() => done = true);
    await clock.advance(499);
    assert.equal(done, false);
    await clock.advance(1);
    await waiting;
    assert.equal(done, true);
    assert.equal(clock.pendingTimers, 0);
  });

  await t.step(
    "abort rejects with the reason and clears the timer",
    async () => {
      const clock = new FakeClock(0);
      const controller = new AbortController();
      const waiting = delay(500, clock, controller.signal);
      assert.equal(clock.pendingTimers, 1);
      const reason = new Error("stop");
      controller.abort(reason);
      assert.equal(await waiting.catch((e) => e), reason);
      assert.equal(clock.pendingTimers, 0);
    },
  );

  await t.step("an aborted signal rejects without a timer", async () => {
    const clock = new FakeClock(0);
    const reason = new Error("already");
    const error = await delay(500, clock, AbortSignal.abort(reason)).catch((
      e,
    ) => e);
    assert.equal(error, reason);
    assert.equal(clock.pendingTimers, 0);
  });

  await t.step("an abort after the wait changes nothing", async () => {
    const clock = new FakeClock(0);
    const controller = new AbortController();
    const waiting = delay(10, clock, controller.signal);
    await clock.advance(10);
    await waiting;
    controller.abort();
    assert.equal(clock.pendingTimers, 0);
  });
});
