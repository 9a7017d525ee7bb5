/**
 * Properties of `withRetry`, the one retry loop: whatever the classifier says
 * and whenever the work fails, the loop stays within its bounds and gives up
 * with the work's own error.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { type RetryVerdict, withRetry } from "../../src/retry.ts";
import { FakeClock } from "../../src/testing/fake_clock.ts";
import { CaseCounter, propertyParameters } from "./fc_parameters.ts";

const verdict: fc.Arbitrary<RetryVerdict> = fc.oneof(
  fc.boolean(),
  fc.integer({ min: 0, max: 120_000 }),
);

Deno.test("withRetry properties", async () => {
  const cases = new CaseCounter();
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        maxAttempts: fc.integer({ min: 1, max: 8 }),
        baseDelayMs: fc.integer({ min: 0, max: 1_000 }),
        maxDelayMs: fc.integer({ min: 0, max: 10_000 }),
        maxElapsedMs: fc.integer({ min: 0, max: 60_000 }),
        maxRetryAfterMs: fc.integer({ min: 0, max: 30_000 }),
      }),
      fc.array(verdict, { minLength: 8, maxLength: 8 }),
      fc.integer({ min: 0, max: 9 }),
      async (policy, verdicts, failures) => {
        cases.tick();
        const clock = new FakeClock(0);
        const waits: number[] = [];
        let calls = 0;
        const errors: Error[] = [];
        const run = withRetry((attempt) => {
          calls++;
          assert.equal(attempt, calls);
          if (calls <= failures) {
            const error = new Error(`failure ${calls}`);
            errors.push(error);
            return Promise.reject(error);
          }
          return Promise.resolve("ok");
        }, {
          ...policy,
          clock,
          random: () => 0.999,
          isRetriable: (_error, attempt) => verdicts[attempt - 1],
          onRetry: ({ delayMs }) => waits.push(delayMs),
        }).then((value) => ({ value }), (error) => ({ error }));
        await clock.runAll();
        const outcome = await run;
        assert.ok(calls >= 1 && calls <= policy.maxAttempts);
        assert.equal(waits.length, calls - 1);
        for (const wait of waits) {
          assert.ok(wait >= 0);
          assert.ok(
            wait <= Math.max(policy.maxDelayMs, policy.maxRetryAfterMs),
            `${wait}`,
          );
        }
        assert.ok(clock.now() <= policy.maxElapsedMs, "stayed in maxElapsedMs");
        if ("value" in outcome) {
          assert.equal(calls, failures + 1);
        } else {
          assert.equal(outcome.error, errors.at(-1), "the work's own error");
          // It gave up early only when told to, or when the next wait would
          // have ended past maxElapsedMs.
          const told = verdicts[calls - 1];
          if (calls < policy.maxAttempts && told !== false) {
            const next = told === true
              ? Math.floor(
                0.999 *
                  Math.min(
                    policy.maxDelayMs,
                    policy.baseDelayMs * 2 ** (calls - 1),
                  ),
              )
              : Math.min(told, policy.maxRetryAfterMs);
            assert.ok(clock.now() + next > policy.maxElapsedMs);
          }
        }
        assert.equal(clock.pendingTimers, 0);
      },
    ),
    propertyParameters(500),
  );
  assert.ok(cases.count >= 500);
});
