import assert from "node:assert/strict";
import {
  classifyErrorResponse,
  classifyFetchFailure,
  isRetryable,
} from "../src/classify.ts";
import {
  AbortedError,
  CredentialRejectedError,
  type DualSecretAuthError,
  ErrorCode,
  InvalidTokenResponseError,
  PermissionDeniedError,
  RateLimitedError,
  RedirectRefusedError,
  TokenEndpointUnavailableError,
  TokenRequestError,
} from "../src/errors.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import type { AuthEvent } from "../src/events.ts";
import { quoteServerText } from "../src/redact.ts";
import { SendFailure } from "../src/send.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  acceptingHandler,
  driveClock,
  FakeTokenEndpoint,
  jsonResponse,
  textResponse,
} from "./support/fake_token_endpoint.ts";

const NOW = Date.UTC(2026, 0, 1);

function classify(
  status: number,
  body: unknown = "",
  headers: HeadersInit = {},
): DualSecretAuthError {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return classifyErrorResponse(
    new Response(null, { status, headers }),
    text,
    "blue",
    NOW,
    (value) => quoteServerText(value, (text) => text),
  );
}

Deno.test("classifyErrorResponse", async (t) => {
  await t.step("rejection codes on 400 and 401 reject the credential", () => {
    for (const status of [400, 401]) {
      for (
        const code of ["invalid_client", "unauthorized_client", "invalid_grant"]
      ) {
        const error = classify(status, {
          error: code,
          description: "authentication failed",
          error_description: "authentication failed",
        });
        assert.ok(
          error instanceof CredentialRejectedError,
          `${status} ${code}`,
        );
        assert.equal(error.code, ErrorCode.CREDENTIAL_REJECTED);
        assert.equal(error.label, "blue");
        assert.equal(error.status, status);
        assert.equal(error.oauthError, code);
        assert.match(error.message, /"blue"/);
      }
    }
  });

  await t.step(
    "Auth0's access_denied and Entra ID's secret codes reject",
    () => {
      const cases: [number, unknown][] = [
        [401, { error: "access_denied", error_description: "Unauthorized" }],
        [400, { error: "access_denied" }],
        [401, {
          error: "invalid_client",
          error_description: "AADSTS7000215: x",
        }],
        // Entra's codes count beside any OAuth code, or none.
        [400, {
          error: "invalid_request",
          error_description: "AADSTS7000222: x",
        }],
        [400, { error_description: "AADSTS7000215: x" }],
      ];
      for (const [status, body] of cases) {
        const error = classify(status, body);
        assert.ok(
          error instanceof CredentialRejectedError,
          JSON.stringify(body),
        );
        assert.equal(isRetryable(error), false);
      }
      // Not on another status, not another code, not mid-text.
      const others: [number, unknown][] = [
        [403, { error: "access_denied" }],
        [403, {
          error: "invalid_request",
          error_description: "AADSTS7000215: x",
        }],
        [400, {
          error: "invalid_request",
          error_description: "AADSTS70002150",
        }],
        [400, {
          error: "invalid_request",
          error_description: "x AADSTS7000215",
        }],
        [400, {
          error: "invalid_request",
          error_description: "AADSTS700016: x",
        }],
      ];
      for (const [status, body] of others) {
        assert.ok(
          classify(status, body) instanceof TokenRequestError,
          JSON.stringify(body),
        );
      }
    },
  );

  await t.step(
    "a hostile error_description object is classified, not thrown",
    () => {
      const error = classify(401, {
        error: "invalid_client",
        error_description: { toString: 1, valueOf: 1 },
      });
      assert.ok(error instanceof CredentialRejectedError, String(error));
    },
  );

  await t.step("Entra ID's AADSTS90055 is throttling on any status", () => {
    for (const status of [400, 401, 403, 429, 500, 503]) {
      const error = classify(status, {
        error: "temporarily_unavailable",
        error_description: "AADSTS90055: TenantThrottlingError",
        error_codes: [90055],
      }, { "retry-after": "7" });
      assert.ok(error instanceof RateLimitedError, `${status}`);
      assert.equal(error.code, ErrorCode.RATE_LIMITED);
      assert.equal(error.retryAfterMs, 7_000);
      assert.equal(isRetryable(error), true);
    }
  });

  await t.step("401 without an OAuth body rejects as invalid_client", () => {
    for (const body of ["", "Unauthorized", "<html></html>", "[]", "{}"]) {
      const error = classify(401, body);
      assert.ok(error instanceof CredentialRejectedError, body);
      assert.equal(error.code, ErrorCode.CREDENTIAL_REJECTED);
      assert.equal(error.oauthError, "invalid_client");
      assert.equal(error.status, 401);
    }
  });

  await t.step("other 4xx are request errors, not rejections", () => {
    const cases: [number, unknown, string | undefined][] = [
      [400, { error: "invalid_scope" }, "invalid_scope"],
      [400, { error: "invalid_request" }, "invalid_request"],
      [400, { error: "unsupported_grant_type" }, "unsupported_grant_type"],
      [400, "", undefined],
      [401, { error: "invalid_request" }, "invalid_request"],
      [403, { error: "invalid_client" }, "invalid_client"],
      [404, "not found", undefined],
    ];
    for (const [status, body, oauthError] of cases) {
      const error = classify(status, body);
      assert.ok(error instanceof TokenRequestError, `${status}`);
      assert.equal(error.code, ErrorCode.TOKEN_REQUEST_FAILED);
      assert.equal(error.status, status);
      assert.equal(error.oauthError, oauthError);
      assert.equal(isRetryable(error), false);
    }
  });

  await t.step("429 is rate limiting with Retry-After seconds", () => {
    const error = classify(429, { message: "slow down" }, {
      "retry-after": "42",
    });
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.code, ErrorCode.RATE_LIMITED);
    assert.equal(error.retryAfterMs, 42_000);
    assert.equal(isRetryable(error), true);
  });

  await t.step(
    "a 400 invalid_request saying the rate limit was exceeded is throttling",
    () => {
      // Genesys Cloud's text (its Terraform provider retries on
      // "400 - invalid_request (rate limit exceeded;"), in either field.
      const bodies = [
        {
          error: "invalid_request",
          description: "rate limit exceeded; retry later",
          error_description: "rate limit exceeded; retry later",
        },
        { error: "invalid_request", description: "Rate Limit Exceeded" },
        { error: "invalid_request", error_description: "rate-limited" },
        {
          error: "invalid_request",
          error_description:
            "The rate limit for this client has been exceeded.",
        },
        { error: "invalid_request", error_description: "Too Many Requests" },
      ];
      for (const body of bodies) {
        for (const quoting of [true, false]) {
          const error = classifyErrorResponse(
            new Response(null, {
              status: 400,
              headers: { "retry-after": "3" },
            }),
            JSON.stringify(body),
            "blue",
            NOW,
            // Throttling is recognised whether server text is quoted or not.
            quoting
              ? (value) => quoteServerText(value, (text) => text)
              : undefined,
          );
          assert.ok(error instanceof RateLimitedError, JSON.stringify(body));
          assert.equal(error.code, ErrorCode.RATE_LIMITED);
          assert.equal(error.retryAfterMs, 3_000);
          assert.equal(isRetryable(error), true);
          // What the 400 said stays in the cause.
          assert.ok(error.cause instanceof TokenRequestError);
          assert.equal(error.cause.status, 400);
          assert.equal(
            error.cause.oauthError,
            quoting ? "invalid_request" : undefined,
          );
        }
      }
    },
  );

  await t.step("rate limit text elsewhere is not throttling", () => {
    const cases: [number, unknown, new (...args: never[]) => Error][] = [
      // Another OAuth error, whatever it says, keeps its meaning.
      [400, {
        error: "invalid_client",
        error_description: "rate limit exceeded",
      }, CredentialRejectedError],
      [400, {
        error: "invalid_scope",
        error_description: "rate limit exceeded",
      }, TokenRequestError],
      // invalid_request without the text, or on another status.
      [
        400,
        { error: "invalid_request", error_description: "bad" },
        TokenRequestError,
      ],
      [403, {
        error: "invalid_request",
        error_description: "rate limit exceeded",
      }, TokenRequestError],
      [
        400,
        { error: "invalid_request", error_description: 42 },
        TokenRequestError,
      ],
      [400, "rate limit exceeded", TokenRequestError],
      // Mentioning a rate limit is not saying it was exceeded.
      [400, {
        error: "invalid_request",
        error_description: "rate limit policy missing. Exceeded nothing",
      }, TokenRequestError],
    ];
    for (const [status, body, type] of cases) {
      const error = classify(status, body);
      assert.ok(error instanceof type, JSON.stringify(body));
      assert.notEqual(error.code, ErrorCode.RATE_LIMITED);
    }
  });

  await t.step("a huge hostile description is classified at once", () => {
    const started = performance.now();
    const error = classify(400, {
      error: "invalid_request",
      error_description: "rate limit ".repeat(6_500),
    });
    assert.ok(error instanceof TokenRequestError);
    // The whole text would take seconds to scan; the first 200 characters, microseconds.
    assert.ok(performance.now() - started < 250, "too slow");
  });

  await t.step("429 with an HTTP date counts from now", () => {
    const error = classify(429, "", {
      "retry-after": new Date(NOW + 12_000).toUTCString(),
    });
    assert.ok(error instanceof RateLimitedError);
    assert.equal(error.code, ErrorCode.RATE_LIMITED);
    assert.equal(error.retryAfterMs, 12_000);
  });

  await t.step("429 without or with a bad Retry-After has none", () => {
    const variants: HeadersInit[] = [{}, { "retry-after": "later" }];
    for (const headers of variants) {
      const error = classify(429, "", headers);
      assert.ok(error instanceof RateLimitedError);
      assert.equal(error.code, ErrorCode.RATE_LIMITED);
      assert.equal(error.retryAfterMs, undefined);
    }
  });

  await t.step("408 and 5xx are transient, even with a rejection body", () => {
    for (const status of [408, 500, 502, 503, 504]) {
      const error = classify(status, { error: "invalid_client" });
      assert.ok(error instanceof TokenEndpointUnavailableError, `${status}`);
      assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
      assert.equal(error.status, status);
      assert.equal(isRetryable(error), true);
    }
  });

  await t.step("descriptions are cut and odd error codes dropped", () => {
    const error = classify(400, {
      error: "weird\ncode",
      error_description: "x".repeat(5_000),
    });
    assert.ok(error instanceof TokenRequestError);
    assert.equal(error.code, ErrorCode.TOKEN_REQUEST_FAILED);
    assert.equal(error.oauthError, undefined);
    assert.ok(error.message.length < 600, String(error.message.length));
  });
});

Deno.test("classifyFetchFailure", async (t) => {
  await t.step("a timeout is unavailability", () => {
    const cause = new DOMException("timed out", "TimeoutError");
    const error = classifyFetchFailure(
      new SendFailure("timeout", "request timed out", { cause }),
    );
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.match(error.message, /timed out/);
    assert.equal(error.cause, cause);
    assert.equal(error.status, undefined);
  });

  await t.step("a network failure is unavailability", () => {
    const cause = new TypeError("error sending request");
    const error = classifyFetchFailure(
      new SendFailure("network", "network TypeError", { cause }),
    );
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.match(error.message, /TypeError/);
    assert.equal(error.cause, cause);
    assert.equal(isRetryable(error), true);
  });

  await t.step("the caller's abort is AbortedError", () => {
    const reason = new DOMException("aborted", "AbortError");
    const error = classifyFetchFailure(
      new SendFailure("aborted", "aborted", { cause: reason }),
    );
    assert.ok(error instanceof AbortedError);
    assert.equal(error.code, ErrorCode.ABORTED);
    assert.equal(error.cause, reason);
    assert.equal(isRetryable(error), false);
  });

  await t.step(
    "a body over the limit is an invalid response, not retried",
    () => {
      const error = classifyFetchFailure(
        new SendFailure(
          "too-large",
          "the response body is larger than 10 bytes",
          undefined,
          200,
        ),
      );
      assert.ok(error instanceof InvalidTokenResponseError);
      assert.equal(error.status, 200);
      assert.match(error.message, /maxResponseBytes/);
      assert.equal(isRetryable(error), false);
    },
  );

  await t.step("a permission refusal is PermissionDeniedError", () => {
    const error = classifyFetchFailure(
      new SendFailure("permission", 'Requires net access to "x:443"'),
    );
    assert.ok(error instanceof PermissionDeniedError);
    assert.equal(isRetryable(error), false);
  });

  await t.step("a library error passes as it is", () => {
    const refused = new RedirectRefusedError("idp.example", "evil.example");
    assert.equal(classifyFetchFailure(refused), refused);
    assert.equal(isRetryable(refused), false);
  });
});

Deno.test("isRetryable: only rate limiting and unavailability", () => {
  assert.equal(
    isRetryable(new CredentialRejectedError("b", { status: 401 })),
    false,
  );
  assert.equal(isRetryable(new InvalidTokenResponseError("x", 200)), false);
  assert.equal(isRetryable(new RateLimitedError(undefined)), true);
  assert.equal(isRetryable(new TokenEndpointUnavailableError("x")), true);
});

Deno.test("token endpoint throttling: retried with backoff, never failed over, ends RATE_LIMITED", async (t) => {
  const genesysThrottle = () =>
    jsonResponse(400, {
      error: "invalid_request",
      description: "rate limit exceeded; try again later",
      error_description: "rate limit exceeded; try again later",
    });
  const plain429 = () => textResponse(429, "slow down");
  for (
    const [name, throttle] of [
      ["Genesys's 400 invalid_request", genesysThrottle],
      ["a 429", plain429],
    ] as const
  ) {
    await t.step(name, async () => {
      const clock = new FakeClock(0);
      const endpoint = new FakeTokenEndpoint({
        tokenHandler: acceptingHandler(
          new Set(["blue-id:blue-secret", "green-id:green-secret"]),
        ),
      });
      const events: AuthEvent[] = [];
      await using auth = createDualSecretAuth({
        credentials: [
          { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
          {
            label: "green",
            clientId: "green-id",
            clientSecret: "green-secret",
          },
        ],
        tokenUrl: endpoint.tokenUrl,
        fetch: endpoint.fetch,
        clock,
        random: () => 0.5,
        retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1_000 },
        onEvent: (event) => events.push(event),
      });
      endpoint.queueToken(throttle(), throttle(), throttle(), throttle());
      const error = await driveClock(clock, auth.getAccessToken()).catch((
        e,
      ) => e);
      assert.ok(error instanceof RateLimitedError, String(error));
      assert.equal(error.code, ErrorCode.RATE_LIMITED);
      // Four attempts, all for blue: green was never asked, nothing failed over.
      assert.deepEqual(
        endpoint.tokenRequests.map((r) => r.clientId),
        ["blue-id", "blue-id", "blue-id", "blue-id"],
      );
      const retries = events.filter((e) => e.type === "retry");
      // Full jitter at random() = 0.5: half of 100, 200, 400 ms.
      assert.deepEqual(retries.map((e) => e.delayMs), [50, 100, 200]);
      assert.ok(
        retries.every((e) => e.error.code === ErrorCode.RATE_LIMITED),
      );
      assert.equal(events.filter((e) => e.type === "failover").length, 0);
      assert.equal(auth.status().active, "blue");

      // Once throttling stops, blue serves.
      endpoint.queueToken(throttle());
      assert.equal(
        await driveClock(clock, auth.getAccessToken()),
        "tok-blue-id-1",
      );
      assert.equal(auth.status().active, "blue");
    });
  }
});
