import assert from "node:assert/strict";
import {
  AbortedError,
  CredentialRejectedError,
  type DualSecretAuthError,
  ErrorCode,
  InvalidTokenResponseError,
  RateLimitedError,
  RedirectRefusedError,
  TokenEndpointUnavailableError,
  TokenRequestError,
} from "../src/errors.ts";
import { systemClock } from "../src/clock.ts";
import { createDualSecretAuth } from "../src/dual_secret_auth.ts";
import type { AuthEvent } from "../src/events.ts";
import { Secret } from "../src/secret.ts";
import { FakeClock } from "../src/testing/fake_clock.ts";
import {
  basicAuthorization,
  DEFAULT_EXPIRES_IN_SECONDS,
  MAX_TOKEN_LIFETIME_MS,
  parseTokenResponse,
  requestToken,
  type TokenRequest,
} from "../src/token_endpoint.ts";
import {
  deferred,
  FakeTokenEndpoint,
  jsonResponse,
  networkError,
  oauthErrorResponse,
  textResponse,
  tokenResponse,
} from "./support/fake_token_endpoint.ts";

const TOKEN_CANARY = "CANARY-TOKEN-b7e1d0c4a9";
const SECRET_CANARY = "CANARY-SECRET-5d2f8e";

function setup(overrides: Partial<TokenRequest> = {}) {
  const endpoint = new FakeTokenEndpoint();
  const clock = new FakeClock(0);
  const request: TokenRequest = {
    tokenUrl: endpoint.tokenUrl,
    label: "blue",
    clientId: "blue-id",
    clientSecret: new Secret(SECRET_CANARY),
    fetch: endpoint.fetch,
    clock,
    timeoutMs: 10_000,
    ...overrides,
  };
  return { endpoint, clock, request };
}

function assertNoLeak(error: unknown): void {
  const text = `${error}\n${(error as Error).stack}\n${
    Deno.inspect(error, { depth: 10 })
  }\n${JSON.stringify(error)}`;
  assert.ok(!text.includes(TOKEN_CANARY), "token leaked: " + text);
  assert.ok(!text.includes(SECRET_CANARY), "secret leaked: " + text);
}

Deno.test("basicAuthorization", async (t) => {
  await t.step(
    "form-encodes id and secret before base64 (RFC 6749 §2.3.1)",
    () => {
      const value = basicAuthorization(
        "id:with%",
        new Secret("p:a%s+s wörd€/~*'()!"),
      );
      assert.match(value, /^Basic [A-Za-z0-9+/]+=*$/);
      assert.equal(
        atob(value.slice("Basic ".length)),
        "id%3Awith%25:p%3Aa%25s%2Bs+w%C3%B6rd%E2%82%AC%2F%7E%2A%27%28%29%21",
      );
    },
  );

  await t.step("plain values stay as they are", () => {
    const value = basicAuthorization("blue-id", new Secret("s3cr3t"));
    assert.equal(value, `Basic ${btoa("blue-id:s3cr3t")}`);
  });
});

Deno.test("requestToken: request shape", async (t) => {
  await t.step("POST, headers, form body, no redirects", async () => {
    const { endpoint, request, clock } = setup();
    endpoint.queueToken(tokenResponse("tok", 3600));
    const grant = await requestToken(request);
    assert.equal(grant.accessToken, "tok");
    assert.equal(endpoint.tokenCalls, 1);
    const sent = endpoint.tokenRequests[0];
    assert.equal(sent.url, endpoint.tokenUrl);
    assert.equal(sent.method, "POST");
    assert.equal(
      sent.headers.get("authorization"),
      `Basic ${btoa(`blue-id:${SECRET_CANARY}`)}`,
    );
    assert.equal(
      sent.headers.get("content-type"),
      "application/x-www-form-urlencoded",
    );
    assert.equal(sent.headers.get("accept"), "application/json");
    assert.equal(sent.body, "grant_type=client_credentials");
    assert.equal(
      sent.redirect,
      "manual",
      "a redirect is refused, not followed",
    );
    assert.equal(clock.pendingTimers, 0, "the timeout timer was cleared");
  });

  await t.step("special characters round-trip through Basic auth", async () => {
    const clientId = "id:ü %+";
    const secret = "se:cr%et+ with spaces/ñ€😀";
    const { endpoint, request } = setup({
      clientId,
      clientSecret: new Secret(secret),
    });
    endpoint.queueToken(tokenResponse("tok"));
    await requestToken(request);
    const sent = endpoint.tokenRequests[0];
    assert.equal(sent.clientId, clientId);
    assert.equal(sent.clientSecret, secret);
    const decoded = atob(sent.headers.get("authorization")!.slice(6));
    assert.equal(decoded.split(":").length, 2, "only the separator is a colon");
    assert.ok(!decoded.includes(" "), "spaces are form-encoded");
  });

  await t.step("a scope is sent in the form", async () => {
    const { endpoint, request } = setup({ scope: "read write" });
    endpoint.queueToken(tokenResponse("tok", 60, { scope: "read" }));
    const grant = await requestToken(request);
    const form = endpoint.tokenRequests[0].form;
    assert.equal(form.get("grant_type"), "client_credentials");
    assert.equal(form.get("scope"), "read write");
    assert.equal(grant.scope, "read");
  });

  await t.step(
    "client_secret_post: id and secret in the form, no Authorization header",
    async () => {
      const secret = "se:cr%et+ with spaces/ñ€😀";
      const { endpoint, request } = setup({
        clientId: "id:ü %+",
        clientSecret: new Secret(secret),
        authMethod: "client_secret_post",
        scope: "read",
      });
      endpoint.queueToken(tokenResponse("tok"));
      await requestToken(request);
      const sent = endpoint.tokenRequests[0];
      assert.equal(sent.headers.has("authorization"), false);
      assert.equal(sent.authMethod, "client_secret_post");
      assert.deepEqual([...sent.form], [
        ["grant_type", "client_credentials"],
        ["scope", "read"],
        ["client_id", "id:ü %+"],
        ["client_secret", secret],
      ]);
    },
  );

  await t.step(
    "client_secret_basic, named, is the default's request",
    async () => {
      const { endpoint, request } = setup({
        authMethod: "client_secret_basic",
      });
      endpoint.queueToken(tokenResponse("tok"));
      await requestToken(request);
      const sent = endpoint.tokenRequests[0];
      assert.equal(sent.authMethod, "client_secret_basic");
      assert.equal(sent.body, "grant_type=client_credentials");
    },
  );

  await t.step("params are sent, and cannot replace grant_type", async () => {
    const { endpoint, request } = setup({
      params: { audience: "https://api.example.com", grant_type: "password" },
    });
    endpoint.queueToken(tokenResponse("tok"));
    await requestToken(request);
    const form = endpoint.tokenRequests[0].form;
    assert.equal(form.get("audience"), "https://api.example.com");
    assert.deepEqual(form.getAll("grant_type"), ["client_credentials"]);
  });

  await t.step(
    "client_secret_post: a server echoing the form is quoted redacted",
    async () => {
      const { endpoint, request } = setup({ authMethod: "client_secret_post" });
      endpoint.queueToken((sent) =>
        jsonResponse(400, {
          error: "invalid_request",
          error_description: `bad body: ${sent.body}`,
        })
      );
      const error = await requestToken(request).catch((e) => e);
      assert.ok(error instanceof TokenRequestError, String(error));
      assert.match(error.message, /\[redacted\]/);
      assertNoLeak(error);
    },
  );

  await t.step(
    "a redirect is never followed (real loopback server)",
    async () => {
      const seen: string[] = [];
      await using server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        (req) => {
          seen.push(new URL(req.url).pathname);
          if (new URL(req.url).pathname === "/elsewhere") {
            return tokenResponse(TOKEN_CANARY);
          }
          return new Response(null, {
            status: 307,
            headers: {
              location: new URL(req.url).pathname === "/oauth/token"
                ? "/elsewhere"
                : `https://${SECRET_CANARY}.evil.example/steal`,
            },
          });
        },
      );
      const error = await requestToken({
        tokenUrl: `http://127.0.0.1:${server.addr.port}/oauth/token`,
        label: "blue",
        clientId: "blue-id",
        clientSecret: new Secret(SECRET_CANARY),
        fetch: globalThis.fetch,
        clock: systemClock,
        timeoutMs: 5_000,
      }).catch((e) => e);
      // Refused once, with a typed error naming where it pointed; no retry.
      assert.ok(error instanceof RedirectRefusedError);
      assert.equal(error.code, ErrorCode.REDIRECT_REFUSED);
      assert.equal(error.targetHost, `127.0.0.1:${server.addr.port}`);
      assert.match(error.message, /redirect to 127\.0\.0\.1/);
      assert.deepEqual(seen, ["/oauth/token"]);
      assertNoLeak(error);
      // A target host that echoes the secret is named redacted.
      const echoed = await requestToken({
        tokenUrl: `http://127.0.0.1:${server.addr.port}/echo`,
        label: "blue",
        clientId: "blue-id",
        clientSecret: new Secret(SECRET_CANARY),
        fetch: globalThis.fetch,
        clock: systemClock,
        timeoutMs: 5_000,
      }).catch((e) => e);
      assert.ok(echoed instanceof RedirectRefusedError);
      assert.match(echoed.message, /\[redacted\]\.evil\.example/);
      assertNoLeak(echoed);
    },
  );
});

Deno.test("requestToken: timeouts and aborts", async (t) => {
  await t.step("the clock's timeout aborts the request", async () => {
    const { endpoint, request, clock } = setup({ timeoutMs: 3_000 });
    const reply = deferred();
    endpoint.queueToken(reply);
    const pending = requestToken(request).catch((e) => e);
    await reply.started;
    await clock.advance(2_999);
    assert.equal(reply.aborted, false);
    await clock.advance(1);
    const error = await pending;
    assert.equal(reply.aborted, true);
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.match(error.message, /timed out/);
    assert.equal(clock.pendingTimers, 0);
  });

  await t.step("the caller's signal aborts with AbortedError", async () => {
    const controller = new AbortController();
    const { endpoint, request, clock } = setup({ signal: controller.signal });
    const reply = deferred();
    endpoint.queueToken(reply);
    const pending = requestToken(request).catch((e) => e);
    await reply.started;
    controller.abort(new Error("caller gave up"));
    const error = await pending;
    assert.ok(error instanceof AbortedError);
    assert.equal(error.code, ErrorCode.ABORTED);
    assert.equal(clock.pendingTimers, 0);
  });

  await t.step("an already aborted signal never waits", async () => {
    const { endpoint, request } = setup({ signal: AbortSignal.abort() });
    endpoint.queueToken(tokenResponse("tok"));
    const error = await requestToken(request).catch((e) => e);
    assert.ok(error instanceof AbortedError);
    assert.equal(error.code, ErrorCode.ABORTED);
  });

  await t.step("a network TypeError is unavailability", async () => {
    const { endpoint, request } = setup();
    endpoint.queueToken(networkError());
    const error = await requestToken(request).catch((e) => e);
    assert.ok(error instanceof TokenEndpointUnavailableError);
    assert.equal(error.code, ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE);
    assert.ok(error.cause instanceof TypeError);
  });
});

Deno.test("requestToken: error responses are classified", async (t) => {
  const cases: [
    string,
    () => Response,
    new (...a: never[]) => DualSecretAuthError,
    string,
  ][] = [
    [
      "400 invalid_client",
      () => oauthErrorResponse(400, "invalid_client", "authentication failed"),
      CredentialRejectedError,
      ErrorCode.CREDENTIAL_REJECTED,
    ],
    [
      "401 invalid_client",
      () => oauthErrorResponse(401, "invalid_client"),
      CredentialRejectedError,
      ErrorCode.CREDENTIAL_REJECTED,
    ],
    [
      "401 bare",
      () => textResponse(401),
      CredentialRejectedError,
      ErrorCode.CREDENTIAL_REJECTED,
    ],
    [
      "400 invalid_scope",
      () => oauthErrorResponse(400, "invalid_scope"),
      TokenRequestError,
      ErrorCode.TOKEN_REQUEST_FAILED,
    ],
    [
      "429",
      () => textResponse(429, "", { "retry-after": "3" }),
      RateLimitedError,
      ErrorCode.RATE_LIMITED,
    ],
    [
      "503",
      () => textResponse(503, "down"),
      TokenEndpointUnavailableError,
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    ],
    [
      "408",
      () => textResponse(408),
      TokenEndpointUnavailableError,
      ErrorCode.TOKEN_ENDPOINT_UNAVAILABLE,
    ],
  ];
  for (const [name, reply, type, code] of cases) {
    await t.step(name, async () => {
      const { endpoint, request, clock } = setup();
      endpoint.queueToken(reply());
      const error = await requestToken(request).catch((e) => e);
      assert.ok(error instanceof type, `${name}: ${error}`);
      assert.equal(error.code, code);
      assertNoLeak(error);
      assert.equal(clock.pendingTimers, 0);
    });
  }
});

Deno.test("parseTokenResponse: strict validation", async (t) => {
  await t.step("a valid response", () => {
    const grant = parseTokenResponse(
      JSON.stringify({
        access_token: "tok",
        token_type: "bearer",
        expires_in: 86400,
        scope: "a b",
      }),
      200,
    );
    assert.deepEqual(grant, {
      accessToken: "tok",
      tokenType: "bearer",
      lifetimeMs: 86_400_000,
      scope: "a b",
    });
  });

  await t.step("bearer in any case is accepted", () => {
    for (const tokenType of ["bearer", "Bearer", "BEARER", "bEaReR"]) {
      const grant = parseTokenResponse(
        JSON.stringify({
          access_token: "t",
          token_type: tokenType,
          expires_in: 1,
        }),
        200,
      );
      assert.equal(grant.tokenType, tokenType);
      assert.equal(grant.lifetimeMs, 1_000);
    }
  });

  await t.step("a huge lifetime is capped", () => {
    for (const expiresIn of [1e9, 172_800 * 100, Number.MAX_SAFE_INTEGER]) {
      const grant = parseTokenResponse(
        JSON.stringify({
          access_token: "t",
          token_type: "bearer",
          expires_in: expiresIn,
        }),
        200,
      );
      assert.equal(grant.lifetimeMs, MAX_TOKEN_LIFETIME_MS);
    }
  });

  const valid = {
    access_token: TOKEN_CANARY,
    token_type: "bearer",
    expires_in: 3600,
  };
  const invalid: [string, string][] = [
    ["non-JSON", `access_token=${TOKEN_CANARY}&expires_in=3600`],
    ["truncated JSON", JSON.stringify(valid).slice(0, -3)],
    ["HTML", `<html>${TOKEN_CANARY}</html>`],
    ["empty body", ""],
    ["null", "null"],
    ["a number", "42"],
    ["a string", JSON.stringify(TOKEN_CANARY)],
    ["an array", JSON.stringify([valid])],
    [
      "missing access_token",
      JSON.stringify({ ...valid, access_token: undefined }),
    ],
    ["empty access_token", JSON.stringify({ ...valid, access_token: "" })],
    ["numeric access_token", JSON.stringify({ ...valid, access_token: 123 })],
    ["missing token_type", JSON.stringify({ ...valid, token_type: undefined })],
    ["token_type mac", JSON.stringify({ ...valid, token_type: "mac" })],
    ["token_type DPoP", JSON.stringify({ ...valid, token_type: "DPoP" })],
    ["expires_in 0", JSON.stringify({ ...valid, expires_in: 0 })],
    ["expires_in negative", JSON.stringify({ ...valid, expires_in: -60 })],
    ["expires_in NaN string", JSON.stringify({ ...valid, expires_in: "NaN" })],
    ["expires_in infinite", JSON.stringify(valid).replace("3600", "1e400")],
    // Only plain decimal digits count as a number of seconds.
    ...["", "0", "-60", " 3600", "3600 ", "3600s", "1e3", "0x10", "Infinity"]
      .map((text): [string, string] => [
        `expires_in string ${JSON.stringify(text)}`,
        JSON.stringify({ ...valid, expires_in: text }),
      ]),
    ["expires_in an array", JSON.stringify({ ...valid, expires_in: [3600] })],
    ["expires_in true", JSON.stringify({ ...valid, expires_in: true })],
  ];
  for (const [name, body] of invalid) {
    await t.step(`${name} is InvalidTokenResponseError`, () => {
      let caught: unknown;
      try {
        parseTokenResponse(body, 200);
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof InvalidTokenResponseError, name);
      assert.equal(caught.code, ErrorCode.INVALID_TOKEN_RESPONSE);
      assert.equal(caught.status, 200);
      assertNoLeak(caught);
    });
  }

  await t.step("expires_in as a numeric string is accepted", () => {
    for (
      const [text, ms] of [["3599", 3_599_000], ["60.5", 60_500], [
        "007",
        7_000,
      ]]
    ) {
      const grant = parseTokenResponse(
        JSON.stringify({ ...valid, expires_in: text }),
        200,
      );
      assert.equal(grant.lifetimeMs, ms, `${text}`);
      assert.equal(grant.lifetimeAssumed, undefined);
    }
  });

  await t.step("a missing or null expires_in assumes the default", () => {
    for (const expiresIn of [undefined, null]) {
      const body = JSON.stringify({ ...valid, expires_in: expiresIn });
      assert.deepEqual(parseTokenResponse(body, 200), {
        accessToken: TOKEN_CANARY,
        tokenType: "bearer",
        lifetimeMs: DEFAULT_EXPIRES_IN_SECONDS * 1000,
        scope: undefined,
        lifetimeAssumed: true,
      });
      assert.equal(parseTokenResponse(body, 200, 45).lifetimeMs, 45_000);
      assert.equal(
        parseTokenResponse(body, 200, 1e12).lifetimeMs,
        MAX_TOKEN_LIFETIME_MS,
      );
    }
  });

  await t.step("requestToken passes defaultExpiresInSeconds", async () => {
    const { endpoint, request } = setup();
    endpoint.queueToken(
      jsonResponse(200, { access_token: "t", token_type: "Bearer" }),
    );
    const grant = await requestToken({
      ...request,
      defaultExpiresInSeconds: 90,
    });
    assert.equal(grant.lifetimeMs, 90_000);
    assert.equal(grant.lifetimeAssumed, true);
  });

  await t.step("requestToken applies it to 2xx answers", async () => {
    const { endpoint, request } = setup();
    endpoint.queueToken(
      jsonResponse(201, {
        access_token: TOKEN_CANARY,
        token_type: "mac",
        expires_in: 60,
      }),
    );
    const error = await requestToken(request).catch((e) => e);
    assert.ok(error instanceof InvalidTokenResponseError);
    assert.equal(error.code, ErrorCode.INVALID_TOKEN_RESPONSE);
    assert.equal(error.status, 201);
    assertNoLeak(error);
  });
});

Deno.test("createDualSecretAuth without expires_in: the default lifetime, one warning", async (t) => {
  const start = (defaultExpiresInSeconds?: number) => {
    const clock = new FakeClock(0);
    const endpoint = new FakeTokenEndpoint();
    let issued = 0;
    const events: AuthEvent[] = [];
    const auth = createDualSecretAuth({
      credentials: [
        { label: "blue", clientId: "blue-id", clientSecret: "blue-secret" },
        { label: "green", clientId: "green-id", clientSecret: "green-secret" },
      ],
      tokenUrl: endpoint.tokenUrl,
      fetch: endpoint.fetch,
      clock,
      random: () => 0,
      refreshMarginMs: 0,
      defaultExpiresInSeconds,
      onEvent: (event) => events.push(event),
    });
    const serve = (expiresIn?: unknown) =>
      endpoint.queueToken(
        jsonResponse(200, {
          access_token: `tok-${++issued}`,
          token_type: "Bearer",
          ...(expiresIn === undefined ? {} : { expires_in: expiresIn }),
        }),
      );
    const warnings = () =>
      events.filter((e) =>
        e.type === "warning" && e.code === "EXPIRES_IN_MISSING"
      );
    return { clock, endpoint, auth, events, serve, warnings };
  };

  await t.step(
    "300 s by default, warned once across refreshes and credentials",
    async () => {
      const { clock, endpoint, auth, serve, warnings } = start();
      await using _ = auth;
      serve();
      assert.equal(await auth.getAccessToken(), "tok-1");
      assert.equal(
        auth.status().credentials[0].expiresAt,
        DEFAULT_EXPIRES_IN_SECONDS * 1000,
      );
      // Still served just before the assumed expiry, refreshed at it.
      await clock.advance(DEFAULT_EXPIRES_IN_SECONDS * 1000 - 1);
      assert.equal(await auth.getAccessToken(), "tok-1");
      await clock.advance(1);
      serve();
      assert.equal(await auth.getAccessToken(), "tok-2");
      // A rotation to green without expires_in warns no more.
      serve();
      await auth.rotate({ to: "green" });
      assert.equal(endpoint.tokenCalls, 3);
      assert.equal(warnings().length, 1);
      const [warning] = warnings();
      assert.ok(warning.type === "warning");
      assert.equal(warning.label, "blue");
      assert.match(warning.message, /defaultExpiresInSeconds/);
    },
  );

  await t.step("defaultExpiresInSeconds is used as given", async () => {
    const { auth, serve } = start(90);
    await using _ = auth;
    serve();
    await auth.getAccessToken();
    assert.equal(auth.status().credentials[0].expiresAt, 90_000);
  });

  await t.step("a numeric string is accepted, without a warning", async () => {
    const { auth, serve, warnings } = start();
    await using _ = auth;
    serve("3599");
    assert.equal(await auth.getAccessToken(), "tok-1");
    assert.equal(auth.status().credentials[0].expiresAt, 3_599_000);
    assert.equal(warnings().length, 0);
  });
});
