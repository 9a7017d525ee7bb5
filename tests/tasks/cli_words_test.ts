import assert from "node:assert/strict";
import {
  CredentialRejectedError,
  TokenEndpointUnavailableError,
} from "../../src/errors.ts";
import { explain, networkProblem } from "../../tasks/_cli.ts";

Deno.test("network failures are named: DNS, refused, TLS, timeout", () => {
  const cases: [Error, RegExp][] = [
    [
      new TypeError(
        "error sending request: dns error: failed to lookup address information: Name or service not known",
      ),
      /^DNS/,
    ],
    [
      new TypeError(
        "error sending request: tcp connect error: Connection refused (os error 111)",
      ),
      /^connection refused/,
    ],
    [
      new TypeError(
        "error sending request: invalid peer certificate: UnknownIssuer",
      ),
      /^TLS/,
    ],
    [new DOMException("Signal timed out.", "TimeoutError"), /^timeout/],
  ];
  for (const [cause, words] of cases) {
    const error = new TokenEndpointUnavailableError("network", undefined, {
      cause,
    });
    assert.match(networkProblem(error) ?? "", words, cause.message);
    const { message } = explain(error);
    assert.match(message, /check GENESYS_ENVIRONMENT or GENESYS_TOKEN_URL/);
    assert.doesNotMatch(message, /retries on the next call/);
  }
});

Deno.test("a rejected credential names its variable; the admin its own", () => {
  const green = new CredentialRejectedError("green", {
    status: 401,
    oauthError: "invalid_client",
  } as never);
  assert.match(explain(green).message, /check GENESYS_CLIENT_SECRET_GREEN/);
  const admin = new CredentialRejectedError("admin", {
    status: 401,
    oauthError: "Basic Ymx1ZTpzZWNyZXQ=",
  } as never);
  const words = explain(admin).message;
  assert.match(words, /check GENESYS_ADMIN_CLIENT_SECRET/);
  assert.doesNotMatch(words, /Basic/);
});
