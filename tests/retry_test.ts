import assert from "node:assert/strict";
import {
  backoffDelay,
  DEFAULT_RETRY,
  delay,
  parseRetryAfter,
  withRetry,
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

Deno.test("withRetry", async (t) => {
  const failing = (times: number, error: unknown = new Error("flaky")) => {
    let calls = 0;
    const fn = (attempt: number) => {
      calls++;
      assert.equal(attempt, calls);
      return calls <= times ? Promise.reject(error) : Promise.resolve(calls);
    };
    return { fn, calls: () => calls };
  };

  await t.step("returns the first success, backing off between", async () => {
    const clock = new FakeClock(0);
    const { fn, calls } = failing(2);
    const waits: number[] = [];
    const result = withRetry(fn, {
      clock,
      random: () => 0.5,
      baseDelayMs: 100,
      onRetry: (wait) => waits.push(wait.delayMs),
    });
    await clock.runAll();
    assert.equal(await result, 3);
    assert.equal(calls(), 3);
    assert.deepEqual(waits, [50, 100]);
  });

  await t.step(
    "isRetriable false gives up with the error unchanged",
    async () => {
      const error = new Error("permanent");
      const { fn, calls } = failing(5, error);
      const seen: unknown[] = [];
      const thrown = await withRetry(fn, {
        clock: new FakeClock(0),
        isRetriable: (e) => {
          seen.push(e);
          return false;
        },
      }).catch((e) => e);
      assert.equal(thrown, error);
      assert.equal(calls(), 1);
      assert.deepEqual(seen, [error]);
    },
  );

  await t.step("a number is the wait, capped at maxRetryAfterMs", async () => {
    const clock = new FakeClock(0);
    const { fn } = failing(2);
    const waits: number[] = [];
    const result = withRetry(fn, {
      clock,
      maxRetryAfterMs: 5_000,
      isRetriable: (_e, attempt) => attempt === 1 ? 1_000 : 60_000,
      onRetry: (wait) => waits.push(wait.delayMs),
    });
    await clock.runAll();
    assert.equal(await result, 3);
    assert.deepEqual(waits, [1_000, 5_000]);
    assert.equal(clock.now(), 6_000);
  });

  await t.step("stops after maxAttempts with the last error", async () => {
    const clock = new FakeClock(0);
    const { fn, calls } = failing(10);
    const result = withRetry(fn, { clock, maxAttempts: 3 }).catch((e) => e);
    await clock.runAll();
    assert.equal((await result).message, "flaky");
    assert.equal(calls(), 3);
  });

  await t.step(
    "gives up when the next wait would pass maxElapsedMs",
    async () => {
      const clock = new FakeClock(0);
      const { fn, calls } = failing(10);
      const result = withRetry(fn, {
        clock,
        maxElapsedMs: 2_500,
        isRetriable: () => 1_000,
      }).catch((e) => e);
      await clock.runAll();
      assert.equal((await result).message, "flaky");
      assert.equal(calls(), 3);
      assert.equal(clock.now(), 2_000);
    },
  );

  await t.step(
    "an abort during a wait rejects with signal.reason",
    async () => {
      const clock = new FakeClock(0);
      const controller = new AbortController();
      const { fn, calls } = failing(10);
      const result = withRetry(fn, {
        clock,
        signal: controller.signal,
        isRetriable: () => 1_000,
      }).catch((e) => e);
      await clock.advance(10);
      const reason = new Error("stop");
      controller.abort(reason);
      assert.equal(await result, reason);
      assert.equal(calls(), 1);
      assert.equal(clock.pendingTimers, 0);
    },
  );

  await t.step("an aborted signal never calls fn", async () => {
    const reason = new Error("already");
    const { fn, calls } = failing(0);
    const thrown = await withRetry(fn, { signal: AbortSignal.abort(reason) })
      .catch((e) => e);
    assert.equal(thrown, reason);
    assert.equal(calls(), 0);
  });
});
