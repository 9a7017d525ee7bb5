import assert from "node:assert/strict";
import { ClosedError } from "./support/closed_error.ts";
import { resolveConfig } from "../src/config.ts";
import type { RetryOptions } from "../src/retry.ts";
import { CredentialSlot } from "../src/credential_slot.ts";
import {
  AbortedError,
  CredentialRejectedError,
  type DualSecretAuthError,
  ErrorCode,
  InvalidTokenResponseError,
  RateLimitedError,
  TokenEndpointUnavailableError,
  TokenRequestError,
} from "../src/errors.ts";
import type { AuthEvent, RetryEvent } from "../src/events.ts";
import { createMemorySharedState } from "../src/store.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  deferred,
  driveClock,
  FakeTokenEndpoint,
  networkError,
  oauthErrorResponse,
  textResponse,
  tokenResponse,
} from "./support/fake_token_endpoint.ts";

interface SetupOptions {
  retry?: RetryOptions;
  random?: () => number;
  refreshMarginMs?: number;
}

function setup(options: SetupOptions = {}) {
  const clock = new FakeClock(0);
  const endpoint = new FakeTokenEndpoint();
  const times: number[] = [];
  const store = createMemorySharedState();
  const events: AuthEvent[] = [];
  const closer = new AbortController();
  const config = resolveConfig({
    credentials: [{ label: "blue", clientId: "blue-id", clientSecret: "s" }],
    tokenUrl: endpoint.tokenUrl,
    fetch: (input, init) => {
      times.push(clock.now());
      return endpoint.fetch(input, init);
    },
    clock,
    random: options.random ?? (() => 0.5),
    refreshMarginMs: options.refreshMarginMs,
    retry: options.retry,
  }, []);
  const slot = new CredentialSlot(config.credentials[0], {
    config,
    store,
    onEvent: (event) => void events.push(event),
    closeSignal: closer.signal,
    inFlight: new Set(),
    redact: (text) => text,
  });
  const retries = () =>
    events.filter((e): e is RetryEvent => e.type === "retry");
  return { clock, endpoint, times, store, events, closer, slot, retries };
}

Deno.test("CredentialSlot: single flight", async (t) => {
  await t.step("concurrent acquires share one request", async () => {
    const { endpoint, slot } = setup();
    const reply = deferred();
    endpoint.queueToken(reply);
    const calls = Array.from({ length: 25 }, () => slot.acquire());
    await reply.started;
    assert.equal(slot.state(0), "fetching");
    reply.resolve(tokenResponse("tok"));
    const grants = await Promise.all(calls);
    assert.equal(endpoint.tokenCalls, 1);
    assert.ok(grants.every((g) => g.accessToken === "tok"));
    assert.equal(slot.inflight, undefined);
  });

  await t.step("a failed request is not kept", async () => {
    const { endpoint, slot } = setup({ retry: { maxAttempts: 1 } });
    endpoint.queueToken(textResponse(503), tokenResponse("tok"));
    const error = await slot.acquire().catch((e) => e);
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.equal(slot.state(0), "unavailable");
    assert.equal((await slot.acquire()).accessToken, "tok");
    assert.equal(endpoint.tokenCalls, 2);
    assert.equal(slot.lastError, undefined);
  });

  await t.step(
    "verify starts a fresh request after the one in flight",
    async () => {
      const { endpoint, slot } = setup();
      const first = deferred();
      endpoint.queueToken(first, tokenResponse("second"));
      const acquiring = slot.acquire();
      await first.started;
      const verifying = slot.verify();
      first.resolve(tokenResponse("first"));
      assert.equal((await acquiring).accessToken, "first");
      assert.equal((await verifying).accessToken, "second");
      assert.equal(endpoint.tokenCalls, 2);
    },
  );
});

Deno.test("CredentialSlot: retries", async (t) => {
  await t.step("transient failures are retried with backoff", async () => {
    const { endpoint, slot, clock, times, retries } = setup({
      retry: { baseDelayMs: 1_000, maxDelayMs: 8_000 },
      random: () => 0.5,
    });
    endpoint.queueToken(
      textResponse(503),
      networkError(),
      tokenResponse("tok"),
    );
    const grant = await driveClock(clock, slot.acquire());
    assert.equal(grant.accessToken, "tok");
    assert.equal(endpoint.tokenCalls, 3);
    assert.deepEqual(
      retries().map((e) => [e.attempt, e.delayMs, e.error.code]),
      [
        [1, 500, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE],
        [2, 1_000, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE],
      ],
    );
    assert.deepEqual(times, [0, 500, 1_500]);
  });

  await t.step("attempts are bounded by maxAttempts", async () => {
    const { endpoint, slot, clock, retries, events } = setup({
      retry: { maxAttempts: 3 },
    });
    endpoint.tokenHandler = () => textResponse(502);
    const error = await driveClock(clock, slot.acquire()).catch((e) => e);
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.equal(error.status, 502);
    assert.equal(endpoint.tokenCalls, 3);
    assert.equal(retries().length, 2);
    const failed = events.filter((e) => e.type === "token.failed");
    assert.equal(failed.length, 1);
  });

  await t.step("attempts are bounded by maxElapsedMs", async () => {
    const { endpoint, slot, clock, times } = setup({
      retry: {
        maxAttempts: 100,
        maxElapsedMs: 30_000,
        maxRetryAfterMs: 60_000,
      },
    });
    endpoint.tokenHandler = () =>
      textResponse(429, "", { "retry-after": "20" });
    const error = await driveClock(clock, slot.acquire()).catch((e) => e);
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.code, ErrorCode.RATE_LIMITED);
    assert.equal(error.retryAfterMs, 20_000);
    assert.deepEqual(times, [0, 20_000]);
  });

  await t.step("Retry-After is honoured on the clock", async () => {
    const { endpoint, slot, clock, times, retries } = setup();
    endpoint.queueToken(
      textResponse(429, "", { "retry-after": "7" }),
      textResponse(429, "", {
        "retry-after": new Date(clock.now() + 7_000 + 3_000).toUTCString(),
      }),
      tokenResponse("tok"),
    );
    assert.equal((await driveClock(clock, slot.acquire())).accessToken, "tok");
    assert.deepEqual(times, [0, 7_000, 10_000]);
    assert.deepEqual(retries().map((e) => e.delayMs), [7_000, 3_000]);
    assert.equal(retries()[0].error.code, ErrorCode.RATE_LIMITED);
  });

  await t.step("Retry-After is capped at maxRetryAfterMs", async () => {
    const { endpoint, slot, clock, times } = setup({
      retry: { maxRetryAfterMs: 5_000 },
    });
    endpoint.queueToken(
      textResponse(429, "", { "retry-after": "3600" }),
      tokenResponse("tok"),
    );
    await driveClock(clock, slot.acquire());
    assert.deepEqual(times, [0, 5_000]);
  });

  await t.step("429 without Retry-After backs off like a 5xx", async () => {
    const { endpoint, slot, clock, times } = setup({
      retry: { baseDelayMs: 400 },
      random: () => 0.25,
    });
    endpoint.queueToken(textResponse(429), tokenResponse("tok"));
    await driveClock(clock, slot.acquire());
    assert.deepEqual(times, [0, 100]);
  });

  await t.step(
    "rejections, request errors and bad bodies are not retried",
    async () => {
      const cases: [
        Response,
        new (...a: never[]) => DualSecretAuthError,
        string,
      ][] = [
        [
          oauthErrorResponse(401, "invalid_client"),
          CredentialRejectedError,
          ErrorCode.CREDENTIAL_REJECTED,
        ],
        [
          oauthErrorResponse(400, "invalid_scope"),
          TokenRequestError,
          ErrorCode.TOKEN_REQUEST_FAILED,
        ],
        [
          tokenResponse("tok", 0),
          InvalidTokenResponseError,
          ErrorCode.INVALID_TOKEN_RESPONSE,
        ],
      ];
      for (const [reply, type, code] of cases) {
        const { endpoint, slot, clock, retries } = setup();
        endpoint.queueToken(reply, tokenResponse("never"));
        const error = await driveClock(clock, slot.acquire()).catch((e) => e);
        assert.ok(error instanceof type);
        assert.equal(error.code, code);
        assert.equal(endpoint.tokenCalls, 1);
        assert.equal(retries().length, 0);
      }
    },
  );
});

Deno.test("CredentialSlot: state and grants", async (t) => {
  await t.step("idle, ready, stale, expired", async () => {
    const { endpoint, slot, clock } = setup({
      refreshMarginMs: 60_000,
      random: () => 0,
    });
    assert.equal(slot.state(clock.now()), "idle");
    endpoint.queueToken(tokenResponse("tok", 600));
    const grant = await slot.acquire();
    assert.equal(grant.expiresAt, 600_000);
    assert.equal(grant.refreshAt, 540_000);
    assert.equal(slot.state(539_999), "ready");
    assert.equal(slot.state(540_000), "stale");
    assert.equal(slot.state(599_999), "stale");
    assert.equal(slot.servable(599_999)?.accessToken, "tok");
    assert.equal(slot.state(600_000), "expired");
    assert.equal(slot.servable(600_000), undefined);
  });

  await t.step(
    "rejection: state rejected, grant dropped, cleared by success",
    async () => {
      const { endpoint, slot, clock, store } = setup();
      endpoint.queueToken(
        tokenResponse("tok"),
        oauthErrorResponse(400, "invalid_grant"),
      );
      await slot.acquire();
      const error = await slot.acquire().catch((e) => e);
      assert.ok(error instanceof CredentialRejectedError);
      assert.equal(error.code, ErrorCode.CREDENTIAL_REJECTED);
      assert.equal(slot.rejection, error);
      assert.equal(slot.state(clock.now()), "rejected");
      assert.equal(store.getGrant("blue"), undefined);
      assert.equal(slot.lastError?.oauthError, "invalid_grant");
      endpoint.queueToken(tokenResponse("again"));
      await slot.verify();
      assert.equal(slot.rejection, undefined);
      assert.equal(slot.state(clock.now()), "ready");
    },
  );

  await t.step(
    "the lifetime counts from when the request was sent",
    async () => {
      const { endpoint, slot, clock } = setup();
      const reply = deferred();
      endpoint.queueToken(reply);
      const acquiring = slot.acquire();
      await reply.started;
      await clock.advance(4_000);
      reply.resolve(tokenResponse("tok", 60));
      const grant = await acquiring;
      assert.equal(grant.expiresAt, 60_000);
    },
  );

  await t.step("the margin is capped at half the lifetime", async () => {
    const { endpoint, slot } = setup({
      refreshMarginMs: 300_000,
      random: () => 0,
    });
    endpoint.queueToken(tokenResponse("tok", 60));
    const grant = await slot.acquire();
    assert.equal(grant.expiresAt - grant.refreshAt, 30_000);
  });

  await t.step(
    "jitter keeps refreshAt within 80-100 % of the margin",
    async () => {
      for (const r of [0, 0.25, 0.5, 0.75, 1 - Number.EPSILON]) {
        const { endpoint, slot } = setup({
          refreshMarginMs: 100_000,
          random: () => r,
        });
        endpoint.queueToken(tokenResponse("tok", 3600));
        const grant = await slot.acquire();
        const margin = grant.expiresAt - grant.refreshAt;
        assert.ok(
          margin > 80_000 - 1e-6 && margin <= 100_000,
          `${r}: ${margin}`,
        );
        assert.ok(Math.abs(margin - 100_000 * (1 - 0.2 * r)) < 1e-6);
      }
    },
  );

  await t.step(
    "token.acquired tells label, client, expiry, duration",
    async () => {
      const { endpoint, slot, clock, events } = setup({
        retry: { baseDelayMs: 100 },
        random: () => 0.5,
      });
      endpoint.queueToken(textResponse(500), tokenResponse("tok", 60));
      await driveClock(clock, slot.acquire(true));
      const acquired = events.find((e) => e.type === "token.acquired");
      assert.deepEqual(acquired, {
        type: "token.acquired",
        label: "blue",
        clientId: "blue-id",
        expiresAt: 50 + 60_000,
        durationMs: 50,
        background: true,
      });
      assert.ok(!JSON.stringify(events).includes('tok"'));
    },
  );
});

Deno.test("CredentialSlot: refresh ahead", async (t) => {
  await t.step(
    "one refresh at a time; after a failure, not before maxDelayMs",
    async () => {
      const { endpoint, slot, clock } = setup({
        retry: { maxAttempts: 1, maxDelayMs: 5_000 },
      });
      endpoint.queueToken(tokenResponse("tok"));
      await slot.acquire();
      const reply = deferred();
      endpoint.queueToken(reply);
      const refresh = slot.refreshAhead(clock.now());
      assert.ok(refresh);
      assert.equal(slot.refreshAhead(clock.now()), undefined);
      await reply.started;
      reply.resolve(textResponse(503));
      await refresh.catch(() => undefined);
      assert.equal(slot.refreshAhead(clock.now() + 4_999), undefined);
      assert.equal(endpoint.tokenCalls, 2);
      endpoint.queueToken(tokenResponse("tok2"));
      const again = slot.refreshAhead(clock.now() + 5_000);
      assert.equal((await again)?.accessToken, "tok2");
      assert.equal(endpoint.tokenCalls, 3);
    },
  );
});

Deno.test("CredentialSlot: retire and close", async (t) => {
  await t.step("a retired slot's request writes nothing", async () => {
    const { endpoint, slot, store, events, clock } = setup();
    const reply = deferred();
    endpoint.queueToken(reply);
    const acquiring = slot.acquire();
    await reply.started;
    slot.retire();
    reply.resolve(tokenResponse("late"));
    assert.equal((await acquiring).accessToken, "late");
    assert.equal(store.getGrant("blue"), undefined);
    assert.equal(events.length, 0);
    assert.equal(slot.state(clock.now()), "idle");
  });

  await t.step("a retired slot's rejection is not recorded", async () => {
    const { endpoint, slot, events } = setup();
    const reply = deferred();
    endpoint.queueToken(reply);
    const acquiring = slot.acquire().catch((e) => e);
    await reply.started;
    slot.retire();
    reply.resolve(oauthErrorResponse(401, "invalid_client"));
    const error = await acquiring;
    assert.ok(error instanceof CredentialRejectedError);
    assert.equal(error.code, ErrorCode.CREDENTIAL_REJECTED);
    assert.equal(slot.rejection, undefined);
    assert.equal(events.length, 0);
  });

  await t.step(
    "closing aborts a request in flight with ClosedError",
    async () => {
      const { endpoint, slot, closer } = setup();
      const reply = deferred();
      endpoint.queueToken(reply);
      const acquiring = slot.acquire().catch((e) => e);
      await reply.started;
      closer.abort(new AbortedError({ closed: true }));
      slot.abort(new AbortedError({ closed: true }));
      slot.abort(new AbortedError({ closed: true }));
      const error = await acquiring;
      assert.ok(error instanceof ClosedError);
      assert.equal(error.code, ErrorCode.CLOSED);
      assert.equal(reply.aborted, true);
    },
  );

  await t.step("closing ends a retry wait with ClosedError", async () => {
    const { endpoint, slot, closer, clock } = setup();
    endpoint.queueToken(textResponse(503));
    const acquiring = slot.acquire().catch((e) => e);
    while (clock.pendingTimers === 0) await clock.advance(0);
    closer.abort(new AbortedError({ closed: true }));
    slot.abort(new AbortedError({ closed: true }));
    const error = await acquiring;
    assert.ok(error instanceof ClosedError);
    assert.equal(error.code, ErrorCode.CLOSED);
    assert.equal(clock.pendingTimers, 0);
    assert.equal(endpoint.tokenCalls, 1);
  });
});
