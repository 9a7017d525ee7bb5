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
import { quoteServerText } from "../src/redact.ts";
import { SendFailure } from "../src/send.ts";

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
