import assert from "node:assert/strict";
import {
  CredentialRejectedError,
  TokenEndpointUnavailableError,
} from "../../src/errors.ts";
import { explain, networkProblem } from "../../tasks/_cli.ts";
import { readProviderEnv } from "../../src/providers/env.ts";
import { readEnvValues } from "../../src/rotation/env_file.ts";

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

Deno.test("another provider's failures name its AUTH_* variables, not Genesys's", async () => {
  const text = await Deno.readTextFile(
    new URL("../../examples/env/okta.env.example", import.meta.url),
  );
  const { names } = readProviderEnv(readEnvValues(text));
  const green = new CredentialRejectedError("green", {
    status: 401,
    oauthError: "invalid_client",
  } as never);
  const rejected = explain(green, names).message;
  assert.match(rejected, /check AUTH_CLIENT_SECRET_GREEN/);
  assert.doesNotMatch(rejected, /GENESYS_/);
  const admin = new CredentialRejectedError("admin", {
    status: 401,
    oauthError: "invalid_client",
  } as never);
  assert.match(explain(admin, names).message, /check AUTH_ADMIN_TOKEN\b/);
  const unreachable = explain(
    new TokenEndpointUnavailableError("network", undefined, {
      cause: new TypeError("tcp connect error: Connection refused"),
    }),
    names,
  ).message;
  assert.match(
    unreachable,
    /check AUTH_DOMAIN and AUTH_AUTH_SERVER_ID or AUTH_TOKEN_URL/,
  );
  assert.doesNotMatch(unreachable, /GENESYS_/);
});
